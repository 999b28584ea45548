"""What the perf dumps and their run facts say about whether two runs are comparable: same model, prompt,
steps, GPUs, release and flags; warm, unprofiled, succeeded runs; synchronized stage timing. compare_perf
(tools/compare_perf.py) reports these beside its numbers."""

from __future__ import annotations

from pathlib import Path

from ..server.settings import state_home
from .perf_dump import PerfDump, added_flag_names, flag_differences, user_flags
from .problems import Problem
from .runs import store

def _differs(label: str, values: list, what: str, code: str) -> Problem | None:
    known = [v for v in values if v is not None]
    if len(set(map(str, known))) > 1:
        return Problem(code=code, message=f"The dumps have different {what}: {', '.join(map(str, known))[:300]}.",
                       fix=f"Compare runs of the same {label}, or read the numbers as different workloads.")
    return None


FACT_KEYS = ("profile", "status", "warmup_excluded_s")


def _run_additions(facts) -> set[str] | None:
    """Flag names run_generate added to that run: from the sidecar, else from the run's record, else unknown."""
    extra = facts.model_extra or {}
    if "additions" in extra:
        return added_flag_names(extra["additions"])
    run_id = facts.run_id
    if isinstance(run_id, str) and store.valid_run_id(run_id):
        record = store.read_record(store.run_dir(str(state_home()), run_id)) or {}
        return added_flag_names(record.get("additions"))
    return None


def _hardware_key(facts) -> str | None:
    """What 'different GPUs' means: the hardware (type and count), not which indices of one host were used."""
    if facts.hardware:
        return facts.hardware
    if facts.gpus is None:
        return None
    names = [g for g in facts.gpus if not str(g).isdigit()]
    return ", ".join(names) if names else f"{len(facts.gpus)} GPU(s)"


def _facts_warnings(dumps: list[PerfDump]) -> list[Problem]:
    out: list[Problem] = []
    unknown = [d.source for d in dumps if d.facts is None]
    if unknown:
        out.append(Problem(
            code="run_facts_unknown",
            message=f"No .meta.json run facts for {', '.join(Path(u).name for u in unknown)}: whether those runs "
                    "were profiled, failed, compiled and timed cold, had synchronized stage profiling, or used other "
                    "GPUs or flags is unknown.",
            fix="Run through run_generate, which writes the facts beside each dump."))
    for d in dumps:
        f, name = d.facts, Path(d.source).name
        if f is None:
            continue
        missing = [k for k in FACT_KEYS if not f.known(k)]
        if missing:
            out.append(Problem(code="run_facts_partial", message=f"{name}: the run facts do not say "
                               f"{', '.join(missing)}, so whether that run was profiled, failed or ran cold is "
                               "unknown.", fix="Rerun through a current run_generate, which records them."))
        if f.profile:
            out.append(Problem(code="profiled_run", message=f"{name} is from a profiled run (--profile): profiled "
                               "timings are not baselines.", fix="Compare unprofiled runs (run_generate "
                               "profile=false); use the profiled run only for plan_kernel_handoff.", flag="--profile"))
        failed = (f.status is not None and f.status != "succeeded") or bool(f.error_code)
        if failed:
            what = f.status or "failed"
            out.append(Problem(code="run_failed", message=f"{name}: its run {what}"
                               + (f" ({f.error_code})" if f.error_code else "") + "; its timings may be partial.",
                               fix="Compare runs that succeeded (get_run tells why this one did not)."))
        if f.compiled and f.warmup is False:
            out.append(Problem(code="compiled_cold", message=f"{name}: torch.compile was on and no warmup ran, so "
                               "compilation time is inside the timings.", fix="Rerun with warmup."))
        elif f.warmup and f.known("warmup_excluded_s") and f.warmup_excluded_s is None and not failed:
            out.append(Problem(code="ran_cold", message=f"{name}: warmup was on but the run has no '(with warmup "
                               "excluded)' time, so warmup failed or did not finish and the request ran cold.",
                               fix="Read that run's log for the warmup error and rerun."))
        if f.sync_stage_profiling is False:
            out.append(Problem(code="stage_times_unsynchronized",
                               message=f"{name}: stage times were taken without SGLANG_DIFFUSION_SYNC_STAGE_PROFILING"
                                       "=1; GPU work can be attributed to a later stage.",
                               fix="Rerun with SGLANG_DIFFUSION_SYNC_STAGE_PROFILING=1 before comparing stages."))
    known = [d for d in dumps if d.facts is not None]
    if len(known) > 1:
        for p in (_differs("GPUs", [_hardware_key(d.facts) for d in known], "GPUs", "different_gpus"),
                  _differs("sglang release", [d.facts.sglang_version for d in known], "sglang versions",
                           "different_sglang_versions")):
            if p:
                out.append(p)
        with_flags = [(Path(d.source).name, user_flags(d.facts.flags, _run_additions(d.facts)))
                      for d in known if d.facts.flags is not None]
        for name, flags in with_flags[1:]:
            diffs = flag_differences(with_flags[0][1], flags)
            if diffs:
                out.append(Problem(code="different_flags", message=f"Flags differ between {with_flags[0][0]} and "
                                   f"{name} (run_generate's own additions ignored): {'; '.join(diffs)}.",
                                   fix="That may be the point of the comparison; check that only the intended flags "
                                       "differ."))
    return out


def comparability_warnings(dumps: list[PerfDump]) -> list[Problem]:
    """Why the dumps may not be comparable: different workloads, old formats, or run facts that differ."""
    out: list[Problem] = []

    def fact(d: PerfDump, key: str):
        return getattr(d, key, None) or (getattr(d.facts, key, None) if d.facts else None)

    for p in (_differs("model", [fact(d, "model") for d in dumps], "models", "different_models"),
              _differs("prompt", [fact(d, "prompt") for d in dumps], "prompts", "different_prompts")):
        if p:
            out.append(p)
    steps = [d.steps.count if d.steps else (d.facts.num_inference_steps if d.facts else None) for d in dumps]
    p = _differs("step count", steps, "denoise step counts", "different_step_counts")
    if p:
        out.append(p)
    for d in dumps:
        for problem in d.problems:
            out.append(problem.model_copy(update={"message": f"{Path(d.source).name}: {problem.message}"}))
    return out + _facts_warnings(dumps)
