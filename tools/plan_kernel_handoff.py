"""plan_kernel_handoff: turn a slow run into findings, ordered next steps and a brief for sglang's kernel skills."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..knowledge.models_lookup import identify_model
from ..knowledge.schema import version_key
from ..server.settings import state_home
from .compare_perf import resolve_ref, run_perf_choice
from .runs import store as run_store
from .runs.redact import Redactor, is_secret_name
from .hardware_spec import parse_hardware_spec
from .kernel_handoff.brief import Baseline, render_brief
from .kernel_handoff.context import HandoffContext, command_tokens, parse_command, reproduction
from .kernel_handoff.findings import Findings, KernelFinding, build_findings
from .kernel_handoff.next_steps import NextStep, choose_skill, kernel_hotspot, plan_next_steps
from .kernel_handoff.trace_summary import summarize_trace
from .perf_dump import (PROFILER_FLAGS, PerfDump, added_env_names, added_flag_names, flag_differences,
                        load_perf_dump, user_flags)
from .problems import Problem, ToolInputError, cap_list

MAX_STEPS = 12
TRACE_GLOBS = ("traces/*.trace.json*", "logs/*.trace.json*", "*.trace.json*", "*/*.pt.trace.json*")
HISTORY_SCAN = 200
# What makes another run a baseline for this one (run history columns = run record `workload` keys).
BASELINE_MATCH = ("gpu_type", "gpu_count", "width", "height", "frames", "steps")


class ResolvedInputs(BaseModel):
    run_id: str | None = None
    perf_dump: str | None = None
    trace: str | None = None
    baseline_perf_dump: str | None = None
    baseline_run_id: str | None = Field(default=None, description="The run the baseline numbers come from, when "
                                                                  "found in the run history.")
    command: str | None = None
    reproduce_command: str | None = Field(default=None, description="The unprofiled command to run with "
                                                                    "run_generate (no paths into the profiled run).")
    model: str | None = None
    model_family: str | None = None
    hardware: str | None = Field(default=None, description="Canonical hardware spec when one was given or recorded.")
    gpu_name: str | None = None
    gpu_count: int | None = None
    compute_capability: str | None = None
    sglang_version: str | None = None


class PlanKernelHandoffResult(BaseModel):
    findings: Findings
    next_steps: list[NextStep] = Field(description="Ordered: measure/flags first, then known fast paths, then "
                                                   "kernel work.")
    next_steps_total: int = 0
    next_steps_truncated: bool = False
    hotspot: KernelFinding | None = Field(default=None, description="The top compute kernel (kernel-work target).")
    target_skill: str | None = Field(default=None, description="sglang skill to hand kernel work to.")
    target_skill_where: str | None = Field(default=None, description="Where that skill lives (path, releases).")
    baseline: Baseline
    profiled_run: bool | None = Field(default=None, description="The perf dump/run was profiled (--profile); "
                                                               "null when unknown.")
    brief: str = Field(description="Markdown hand-off brief for the target skill.")
    inputs: ResolvedInputs
    warnings: list[Problem] = Field(default_factory=list)


# --- run records (run_generate's store owns the layout) ------------------------------------------------------

def _read_run(run_id: str) -> dict | None:
    return run_store.read_record(run_store.run_dir(str(state_home()), run_id))


def _record_perf(run_id: str, record: dict) -> str | None:
    result = record.get("result") if isinstance(record.get("result"), dict) else {}
    candidates = [result.get("perf_dump_path"), *(record.get("perf_paths") or [])]
    return next((p for p in candidates if isinstance(p, str) and Path(p).is_file()), None)


def _record_trace(record: dict, warnings: list[Problem]) -> str | None:
    result = record.get("result") if isinstance(record.get("result"), dict) else {}
    listed: list[Any] = []
    for holder in (record, result):
        listed += [holder.get("trace_path")] + list(holder.get("trace_paths") or [])
    found = [p for p in listed if isinstance(p, str) and Path(p).is_file()]
    rdir = record.get("run_dir")
    if not found and isinstance(rdir, str) and Path(rdir).is_dir():
        for pattern in TRACE_GLOBS:
            found += sorted(str(p) for p in Path(rdir).glob(pattern) if p.is_file())
    found = list(dict.fromkeys(found))
    if not found:
        return None
    rank0 = [p for p in found if "rank0" in Path(p).name]
    if len(found) > 1:
        warnings.append(Problem(code="several_traces", message=f"The run has {len(found)} traces; read "
                                f"{Path((rank0 or found)[0]).name} (rank 0 when present).",
                                fix="Pass `trace` to read another rank.", flag="trace"))
    return (rank0 or found)[0]


# --- context -------------------------------------------------------------------------------------------------

def _extra(dump: PerfDump | None, key: str) -> Any:
    if dump is None or dump.facts is None:
        return None
    return getattr(dump.facts, key, None) if key in type(dump.facts).model_fields else \
        (dump.facts.model_extra or {}).get(key)


def _profiled(record: dict | None, dump: PerfDump | None, flags: dict) -> bool | None:
    for value in ((record or {}).get("profile"), ((record or {}).get("result") or {}).get("profile"),
                  _extra(dump, "profile")):
        if isinstance(value, bool):
            return value
    recorded = (record or {}).get("argv") or _extra(dump, "flags")
    if isinstance(recorded, list):
        return "--profile" in recorded
    return True if "--profile" in flags else None


def _version(text: Any, warnings: list[Problem]) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        version_key(text)
        return text
    except ValueError:
        warnings.append(Problem(code="odd_sglang_version", message=f"sglang version {text!r} is not a release "
                                "number; release-specific spellings and fast paths use the newest release."))
        return None


def _model(ctx: HandoffContext, warnings: list[Problem]) -> None:
    if not ctx.model:
        warnings.append(Problem(code="model_unknown", message="No model given or recorded; fast paths are not "
                                "filtered by model family.", fix="Pass `model`.", flag="model"))
        return
    try:
        match = identify_model(ctx.model)
    except ToolInputError as exc:
        warnings.append(Problem(code="unknown_model", message=f"{exc.problem.message} Fast paths are not filtered "
                                "by model family.", fix=exc.problem.fix, flag="model"))
        return
    ctx.model_family = match.model.family
    cfg = getattr(match.model, "cfg", None)
    ctx.model_uses_cfg = None if cfg is None else cfg == "true_cfg"


def _hardware(ctx: HandoffContext, spec: str | None, trace_gpu: str | None, trace_cc: str | None,
              trace_world: int | None, warnings: list[Problem], recorded_count: int | None = None,
              recorded_type: str | None = None, spec_recorded: bool = False) -> None:
    if spec:
        try:
            hw = parse_hardware_spec(spec)
            ctx.hardware, ctx.gpu_name, ctx.gpu_count = hw.spec, hw.gpu_name, hw.count
            ctx.compute_capability = hw.compute_capability
        except ToolInputError as exc:
            if not spec_recorded:
                warnings.append(exc.problem)
            elif recorded_type is None:
                recorded_type = spec.split("x", 1)[-1] if spec[:1].isdigit() else spec
    if recorded_count:  # the GPUs the run actually had, from its record: they beat a spec's count
        ctx.gpu_count = recorded_count
    ctx.gpu_name = ctx.gpu_name or trace_gpu or recorded_type
    if trace_world and ctx.gpu_count and trace_world != ctx.gpu_count:
        warnings.append(Problem(code="gpu_count_mismatch", message=f"The trace comes from {trace_world} rank(s), "
                                f"but the run had {ctx.gpu_count} GPU(s).", fix="Check that the trace and the run "
                                "belong together; steps use the run's GPU count.", flag="trace"))
    if trace_cc and ctx.compute_capability and trace_cc != ctx.compute_capability:
        warnings.append(Problem(code="hardware_mismatch", message=f"The trace ran on compute capability {trace_cc} "
                                f"({trace_gpu or 'unnamed GPU'}), not the {ctx.compute_capability} of {ctx.hardware}.",
                                fix="Check that the trace and the hardware belong to the same run.", flag="hardware"))
    ctx.gpu_name = ctx.gpu_name or trace_gpu
    ctx.compute_capability = ctx.compute_capability or trace_cc
    num_gpus = ctx.number("--num-gpus")
    ctx.gpu_count = ctx.gpu_count or (int(num_gpus) if num_gpus else None) or trace_world
    if not ctx.compute_capability:
        warnings.append(Problem(code="compute_capability_unknown", message="The GPU's compute capability is "
                                "unknown, so steps that depend on it (FlashAttention, FP8) are conditional.",
                                fix="Pass `hardware`, e.g. 1xH100.", flag="hardware"))


def _redact(command: str | None, env: dict[str, str], flags: dict[str, str | None]) -> str | None:
    """Hide secret values (HF_TOKEN=..., --hf-token ...) from the command that goes into the result and brief."""
    if not command:
        return command
    extra = [v for k, v in env.items() if is_secret_name(k)]
    extra += [v for k, v in flags.items() if v and is_secret_name(k.lstrip("-").replace("-", "_"))]
    return Redactor.from_env(extra=extra).text(command)


# --- baseline ------------------------------------------------------------------------------------------------

def _baseline_from(dump: PerfDump, label: str | None = None) -> Baseline:
    return Baseline(source=label or dump.source, total_ms=dump.total_ms, denoise_ms=dump.denoise_ms,
                    steps=dump.steps.count if dump.steps else None,
                    mean_step_ms=dump.steps.mean_ms if dump.steps else None, peak_reserved_gb=dump.peak_reserved_gb)


def _run_user_flags(record: dict) -> list[str] | None:
    argv = record.get("argv")
    if not isinstance(argv, list):
        return None
    return user_flags([str(a) for a in argv[2:]], added_flag_names(record.get("additions")), drop=PROFILER_FLAGS)


def _history_baseline(run_id: str | None, rec: dict, dump: PerfDump | None,
                      warnings: list[Problem]) -> tuple[Baseline, str, str] | None:
    """The latest succeeded, unprofiled run of the same model, GPUs, shape and steps, from the run history.

    Among those, one with the same flags (less run_generate's) and sglang release is preferred, then one
    that ran warm; the pick and any differing flags are told in a warning."""
    workload = rec.get("workload") if isinstance(rec.get("workload"), dict) else _extra(dump, "workload")
    if not isinstance(workload, dict) or not (workload.get("model") or rec.get("model")):
        return None
    model = workload.get("model") or rec.get("model")
    home = str(state_home())
    try:
        rows, _ = run_store.query_history(home, model=model, status="succeeded", limit=HISTORY_SCAN)
    except Exception as exc:  # a locked or damaged history must not stop the plan
        warnings.append(Problem(code="history_unreadable", message=f"Could not read the run history: {exc}."))
        return None
    mine = _run_user_flags(rec) if rec else None
    if mine is None and _extra(dump, "flags") is not None:
        mine = user_flags([str(f) for f in _extra(dump, "flags")], None, drop=PROFILER_FLAGS)
    version = rec.get("sglang_version") or _extra(dump, "sglang_version")
    best: tuple[tuple, dict, dict, Path] | None = None
    for row in rows:  # newest first
        if row.get("run_id") == run_id or any(row.get(k) != workload.get(k) for k in BASELINE_MATCH):
            continue
        if not run_store.valid_run_id(str(row.get("run_id") or "")):
            continue
        other = run_store.read_record(run_store.run_dir(home, row["run_id"])) or {}
        if other.get("profile") or "--profile" in (other.get("argv") or []):
            continue
        path, _ = run_perf_choice(row["run_id"])
        if path is None:
            continue
        theirs = _run_user_flags(other)
        score = (mine is not None and theirs is not None and not flag_differences(mine, theirs),
                 bool(version) and row.get("sglang_version") == version, row.get("warmup_excluded_s") is not None)
        if best is None or score > best[0]:
            best = (score, row, other, path)
        if all(score):
            break
    if best is None:
        return None
    score, row, other, path = best
    base = load_perf_dump(path)
    shape = f"{workload.get('gpu_count')}x{workload.get('gpu_type') or 'GPU'}, {workload.get('width')}x" \
            f"{workload.get('height')}, {workload.get('frames') or 1} frame(s), {workload.get('steps')} steps"
    caveats = []
    theirs = _run_user_flags(other)
    if mine is not None and theirs is not None and (diffs := flag_differences(mine, theirs)):
        caveats.append(f"its flags differ: {'; '.join(diffs)}")
    if version and row.get("sglang_version") != version:
        caveats.append(f"it ran sglang {row.get('sglang_version')}, not {version}")
    if row.get("warmup_excluded_s") is None:
        caveats.append("it has no warmed-up time, so it may have run cold")
    warnings.append(Problem(code="baseline_from_history", message=f"Baseline numbers come from run {row['run_id']} "
                            f"({path.name}), the latest succeeded unprofiled run of {model} on {shape}"
                            + (f"; {', '.join(caveats)}" if caveats else "") + ".",
                            fix="Pass baseline_perf_dump to use another run.", flag="baseline_perf_dump"))
    return _baseline_from(base, f"run {row['run_id']}: {path}"), str(path), row["run_id"]


def _baseline(dump: PerfDump | None, profiled: bool | None, baseline_ref: str | None,
              warnings: list[Problem], run_id: str | None = None,
              rec: dict | None = None) -> tuple[Baseline, str | None, str | None]:
    if baseline_ref:
        path, label, notes = resolve_ref(baseline_ref)
        warnings += notes
        base = load_perf_dump(path)
        if _extra(base, "profile") is True or "--profile" in (_extra(base, "flags") or []):
            warnings.append(Problem(code="baseline_profiled", message=f"{label} is itself from a profiled run; "
                                    "its timings include profiler overhead.",
                                    fix="Pass an unprofiled perf dump as baseline_perf_dump.",
                                    flag="baseline_perf_dump"))
        return _baseline_from(base, str(path)), str(path), None
    if dump is None:
        return Baseline(missing_reason="No perf dump was given or recorded, so there are no baseline numbers. "
                                       "Run the command unprofiled with --perf-dump-path (run_generate does) and "
                                       "pass it as `perf_dump` or `baseline_perf_dump`."), None, None
    if profiled:
        found = _history_baseline(run_id, rec or {}, dump, warnings)
        if found is not None:
            return found
        searched = " No succeeded unprofiled run of the same model, GPUs, shape and steps is in the run history." \
            if (rec or {}).get("workload") or _extra(dump, "workload") else ""
        warnings.append(Problem(code="baseline_missing", message="The perf dump comes from a profiled run "
                                "(--profile): its timings include the profiler's overhead and are not baseline "
                                f"numbers.{searched}", fix="Run the reproduction command with run_generate "
                                "(profile=false) and pass that run as baseline_perf_dump.", flag="baseline_perf_dump"))
        return Baseline(source=None, missing_reason="The only perf dump is from the profiled run; profiled timings "
                        f"are not baselines.{searched} Rerun unprofiled and pass baseline_perf_dump."), None, None
    if profiled is None:
        warnings.append(Problem(code="profile_status_unknown", message="Whether the perf dump's run was profiled is "
                                "unknown (no run record or .meta.json); if it was, its numbers are not baselines.",
                                fix="Use run_generate runs, or pass an unprofiled baseline_perf_dump."))
    return _baseline_from(dump), None, None


def _reproduce(command: str | None, rec: dict, dump: PerfDump | None) -> str | None:
    """The unprofiled command, from the caller's command, else the run's argv, else the sidecar's flags."""
    if command:
        env, tokens = command_tokens(command)
        return reproduction(tokens, env, added_flags=set())
    additions = rec.get("additions") if rec else _extra(dump, "additions")
    added_env = added_env_names(additions) if isinstance(additions, list) else None
    argv = rec.get("argv") if isinstance(rec.get("argv"), list) else None
    if argv:
        return reproduction([str(a) for a in argv], {}, added_flag_names(additions))
    recorded = rec.get("command") or _extra(dump, "command")
    if isinstance(recorded, str) and recorded:
        env, tokens = command_tokens(recorded)
        # the env a record's command shows is what run_generate added
        return reproduction(tokens, env, added_flag_names(additions), added_env if added_env is not None else set(env))
    flags = _extra(dump, "flags")
    if isinstance(flags, list):
        return reproduction(["sglang", "generate", *map(str, flags)], {}, added_flag_names(additions))
    return None


def _recorded_gpus(rec: dict, dump: PerfDump | None) -> tuple[int | None, str | None]:
    """(GPU count, GPU type) the run record (or the dump's sidecar) says the run used."""
    workload = rec.get("workload") if isinstance(rec.get("workload"), dict) else _extra(dump, "workload")
    workload = workload if isinstance(workload, dict) else {}
    gpus = rec.get("gpus") if isinstance(rec.get("gpus"), list) and rec.get("gpus") else _extra(dump, "gpus")
    count = len(gpus) if isinstance(gpus, list) and gpus else workload.get("gpu_count")
    gpu_type = workload.get("gpu_type")
    return (count if isinstance(count, int) and count > 0 else None,
            gpu_type if isinstance(gpu_type, str) and gpu_type else None)


# --- the tool ------------------------------------------------------------------------------------------------

def plan_kernel_handoff(run_id: str | None = None, perf_dump: str | None = None, trace: str | None = None,
                        command: str | None = None, model: str | None = None, hardware: str | None = None,
                        baseline_perf_dump: str | None = None) -> PlanKernelHandoffResult:
    """Turn a slow run into evidence and a hand-off brief for SGLang's kernel-optimization skills.

    Give a `run_id` from run_generate (ideally one with profile=true), or a `perf_dump` path, plus an optional
    torch profiler `trace` (Chrome trace JSON, gzipped or not, as `sglang generate --profile` writes it; read
    streaming). Returns `findings` (time per stage, and within the profiled denoising the share of attention,
    GEMM, norm/elementwise, communication, host-device copies and idle gaps, with the top kernels and their
    shapes and dtypes), ordered `next_steps` (flags that fix it first, then known sglang fast paths that already
    cover the hotspot, only then new kernel work naming `target_skill`), and `brief`, a Markdown hand-off with the
    reproduction command, baseline numbers from an unprofiled perf dump (pass `baseline_perf_dump` when the run
    was profiled), the hotspot, and acceptance criteria (numerical tolerance, >= 1.5 % end-to-end gain in
    same-GPU ABBA runs). `command`, `model` and `hardware` (e.g. 1xH100) fill in what a run id would supply.
    Read-only.
    """
    warnings: list[Problem] = []
    if not any(isinstance(v, str) and v.strip() for v in (run_id, perf_dump, trace)):
        raise ToolInputError("missing_input", "Nothing to analyse: no run_id, perf_dump or trace.",
                             "Pass a run_id from run_generate (profile=true), or a perf_dump path and a trace path.")
    record: dict | None = None
    if run_id:
        if not run_store.valid_run_id(run_id):
            raise ToolInputError("bad_run_id", f"{run_id!r} is not a run id.", "Use an id from list_runs.",
                                 flag="run_id")
        record = _read_run(run_id)
        if record is None:
            raise ToolInputError("run_not_found", f"No run {run_id!r} under {state_home() / 'runs'}.",
                                 "Use an id from list_runs, or pass perf_dump and trace paths.", flag="run_id")
    dump_path = perf_dump or (_record_perf(run_id, record) if run_id and record is not None else None)
    dump = load_perf_dump(dump_path) if dump_path else None
    if dump is not None:
        warnings += [p for p in dump.problems if p.code not in ("old_format_no_steps",)][:5]
    trace_path = trace or (_record_trace(record, warnings) if record else None)
    if not trace_path:
        warnings.append(Problem(code="no_trace", message="No torch profiler trace, so time is split by stage only.",
                                fix="Rerun with run_generate profile=true (sglang --profile) and pass the trace.",
                                flag="trace"))
    summary = summarize_trace(trace_path) if trace_path else None

    rec = record or {}
    recorded_flags = _extra(dump, "flags")
    cmd = command or rec.get("command") or _extra(dump, "command") or (
        shlex.join(["sglang", "generate", *map(str, recorded_flags)]) if isinstance(recorded_flags, list) else None)
    env, flags = parse_command(cmd)
    cmd = _redact(cmd, env, flags)
    reproduce = _redact(_reproduce(command, rec, dump), env, flags)
    ctx = HandoffContext(command=cmd, env=env, flags=flags,
                         version=_version(rec.get("sglang_version") or _extra(dump, "sglang_version"), warnings),
                         model=model or rec.get("model") or _extra(dump, "model") or (dump.model if dump else None)
                         or flags.get("--model-path"), reproduce=reproduce)
    _model(ctx, warnings)
    findings = build_findings(dump, summary)
    tf = findings.trace
    recorded_count, recorded_type = _recorded_gpus(rec, dump)
    _hardware(ctx, hardware or rec.get("hardware") or _extra(dump, "hardware"), tf.gpu_name if tf else None,
              tf.compute_capability if tf else None, tf.world_size if tf else None, warnings,
              recorded_count=None if hardware else recorded_count, recorded_type=recorded_type,
              spec_recorded=not hardware)
    profiled = _profiled(record, dump, flags)
    baseline, baseline_path, baseline_run = _baseline(dump, profiled, baseline_perf_dump, warnings, run_id, rec)

    steps, _ = plan_next_steps(findings, ctx)
    hotspot = kernel_hotspot(findings)
    skill, note = choose_skill(hotspot, ctx.version)
    if note:
        warnings.append(Problem(code="target_skill_not_shipped", message=note,
                                fix="Hand the brief to that skill from the older release, or to your own kernel "
                                    "workflow; the brief is self-contained."))
    brief = render_brief(findings, ctx, steps, baseline, hotspot, skill, note)
    shown, total, truncated = cap_list(steps, MAX_STEPS)
    where = "; ".join(f"{loc.path} (sglang {loc.releases.since}-{loc.releases.until or 'now'})"
                      for loc in skill.locations) if skill else None
    return PlanKernelHandoffResult(
        findings=findings, next_steps=shown, next_steps_total=total, next_steps_truncated=truncated,
        hotspot=hotspot, target_skill=skill.skill if skill else None, target_skill_where=where, baseline=baseline,
        profiled_run=profiled, brief=brief, warnings=warnings,
        inputs=ResolvedInputs(run_id=run_id, perf_dump=str(dump_path) if dump_path else None,
                              trace=str(trace_path) if trace_path else None, baseline_perf_dump=baseline_path,
                              baseline_run_id=baseline_run, command=cmd, reproduce_command=reproduce, model=ctx.model, model_family=ctx.model_family, hardware=ctx.hardware,
                              gpu_name=ctx.gpu_name, gpu_count=ctx.gpu_count,
                              compute_capability=ctx.compute_capability, sglang_version=ctx.version))
