"""compare_perf: compare two or more sglang perf dumps the way SGLang's own benchmarks/compare_perf.py does.

SGLang's rules (sglang/multimodal_gen/benchmarks/compare_perf.py, unchanged from 0.5.8 to 0.5.23), reimplemented:
  - E2E status from the percent difference: below -2 % faster, above +2 % slower, else similar.
  - Stage status from bounds: slower above max(b*1.1, b+120 ms), faster below min(b*0.9, b-120 ms).
  - `denoising_step_N` stage entries are summed into one "Denoising Loop" row; repeated names are summed.
  - Stage order: the newest dump's order first, then names only the older ones have.
  - diff % is 0 when the baseline is 0.
Denoise time (not in SGLang's report) uses the E2E percent rule.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from ..server.settings import state_home
from .perf_dump import PerfDump, load_perf_dump
from .problems import Problem, ToolInputError, cap_list
from .runs import store

FASTER, SLOWER, SIMILAR = "faster", "slower", "similar"
E2E_PCT = 2.0
STAGE_REL_TOL, STAGE_ABS_TOL_MS = 0.1, 120.0
DENOISE_GROUP = "Denoising Loop"
STEP_STAGE = re.compile(r"^denoising_step_(\d+)$")
MAX_STAGES = 40
MAX_MORE = 8
PCT_MARK = {FASTER: "✅", SLOWER: "❌", SIMILAR: "⚪️"}
BOUND_MARK = {FASTER: "🟢", SLOWER: "🔴", SIMILAR: "⚪️"}
CHARTS_HINT = "pip install 'sglang-diffusion-mcp[charts]'"


class Verdict(BaseModel):
    baseline_ms: float | None = None
    new_ms: float | None = None
    diff_ms: float | None = None
    diff_pct: float | None = Field(default=None, description="(new - baseline) / baseline * 100; 0 when baseline is 0.")
    speedup: float | None = Field(default=None, description="baseline / new.")
    status: str | None = Field(default=None, description="faster, slower or similar; null when a side is missing.")


class DenoiseVerdict(Verdict):
    baseline_source: str | None = Field(default=None, description="'stages' or 'steps'.")
    new_source: str | None = None
    baseline_steps: int | None = None
    new_steps: int | None = None
    baseline_mean_step_ms: float | None = None
    new_mean_step_ms: float | None = None
    baseline_median_step_ms: float | None = None
    new_median_step_ms: float | None = None


class Throughput(BaseModel):
    baseline_req_per_s: float
    new_req_per_s: float


class StageVerdict(BaseModel):
    name: str
    baseline_ms: float
    new_ms: float
    diff_ms: float
    diff_pct: float
    status: str
    baseline_count: int = Field(default=0, description="Entries summed into this row (steps, for the Denoising Loop).")
    new_count: int = 0


class MemoryVerdict(BaseModel):
    baseline_peak_reserved_gb: float | None = Field(default=None, description="GiB.")
    new_peak_reserved_gb: float | None = Field(default=None, description="GiB.")
    diff_gb: float | None = Field(default=None, description="GiB.")


class RunComparison(BaseModel):
    label: str
    source: str
    total: Verdict
    denoise: DenoiseVerdict
    throughput: Throughput
    stages: list[StageVerdict]
    stages_total: int
    stages_truncated: bool
    memory: MemoryVerdict


class ComparePerfResult(BaseModel):
    baseline: str = Field(description="The baseline dump's path.")
    new: str = Field(description="The new dump's path.")
    total: Verdict
    denoise: DenoiseVerdict = Field(description="SGLang's primary metric, plus step counts and step times.")
    throughput: Throughput = Field(description="Requests per second from the E2E latency, as SGLang prints it.")
    stages: list[StageVerdict]
    stages_total: int
    stages_truncated: bool
    memory: MemoryVerdict
    more: list[RunComparison] = Field(default_factory=list, description="Each further run against the baseline.")
    markdown: str = Field(description="SGLang compare_perf.py's report, same layout, marks and thresholds.")
    chart_path: str | None = Field(default=None, description="PNG of the per-stage comparison, or null.")
    warnings: list[Problem] = Field(default_factory=list)


def run_perf_path(run_id: str) -> Path | None:
    """The first perf dump run_generate recorded for a run, from its run record; None if there is none."""
    if not store.valid_run_id(run_id):
        return None
    record = store.read_record(store.run_dir(str(state_home()), run_id)) or {}
    return next((Path(p) for p in record.get("perf_paths") or [] if Path(p).is_file()), None)


def resolve_dump(ref: str) -> tuple[Path, str]:
    """A perf-dump path or a run id -> (path, label). Labels are file names, as SGLang uses them."""
    if not isinstance(ref, str) or not ref.strip():
        raise ToolInputError("bad_perf_ref", "A perf dump reference is empty.", "Pass a perf-dump path or a run_id.")
    path = Path(ref).expanduser()
    if path.is_file():
        return path, path.name
    if (from_run := run_perf_path(ref)) is not None:
        return from_run, ref
    raise ToolInputError("perf_dump_not_found", f"{ref!r} is neither a perf-dump file nor a run with a perf dump.",
                         "Pass the --perf-dump-path file, or a run_id from run_generate/list_runs.")


def consolidate(raw: list[tuple[str, float]]) -> tuple[dict[str, float], list[str], dict[str, int]]:
    """Group stage entries like SGLang: denoising_step_N -> 'Denoising Loop'; repeated names are summed."""
    durations: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name, ms in raw:
        key = DENOISE_GROUP if STEP_STAGE.match(name) else name
        durations[key] = durations.get(key, 0.0) + ms
        counts[key] = counts.get(key, 0) + 1
    return durations, list(durations), counts


def pct_diff(base: float, new: float) -> tuple[float, float]:
    diff = new - base
    return diff, (0.0 if base == 0 else diff / base * 100)


def pct_status(diff_pct: float) -> str:
    return FASTER if diff_pct < -E2E_PCT else SLOWER if diff_pct > E2E_PCT else SIMILAR


def bound_status(base: float, new: float) -> str:
    upper = max(base * (1 + STAGE_REL_TOL), base + STAGE_ABS_TOL_MS)
    lower = min(base * (1 - STAGE_REL_TOL), base - STAGE_ABS_TOL_MS)
    return SLOWER if new > upper else FASTER if new < lower else SIMILAR


def _verdict(base: float | None, new: float | None, cls=Verdict, **extra):
    if base is None or new is None:
        return cls(baseline_ms=base, new_ms=new, **extra)
    diff, pct = pct_diff(base, new)
    return cls(baseline_ms=base, new_ms=new, diff_ms=diff, diff_pct=pct, speedup=(base / new) if new else None,
               status=pct_status(pct), **extra)


def _e2e(dump: PerfDump) -> float:
    # SGLang reads a missing total as 0.
    return dump.total_ms if dump.total_ms is not None else 0.0


def _throughput(ms: float) -> float:
    return 1000 / ms if ms else 0.0


class _Grouped:
    def __init__(self, dump: PerfDump):
        self.durations, self.order, self.counts = consolidate(dump.raw_stages)


def combined_order(base: _Grouped, others: list[_Grouped]) -> list[str]:
    order: list[str] = []
    for grouped in reversed(others):
        order += [n for n in grouped.order if n not in order]
    return order + [n for n in base.order if n not in order]


def _stage_rows(base: _Grouped, new: _Grouped, order: list[str]) -> list[StageVerdict]:
    rows = []
    for name in order:
        b, n = base.durations.get(name, 0.0), new.durations.get(name, 0.0)
        diff, pct = pct_diff(b, n)
        rows.append(StageVerdict(name=name, baseline_ms=b, new_ms=n, diff_ms=diff, diff_pct=pct,
                                 status=bound_status(b, n), baseline_count=base.counts.get(name, 0),
                                 new_count=new.counts.get(name, 0)))
    return rows


def _denoise(base: PerfDump, new: PerfDump) -> DenoiseVerdict:
    bs, ns = base.steps, new.steps
    return _verdict(base.denoise_ms, new.denoise_ms, DenoiseVerdict,
                    baseline_source=base.denoise_source, new_source=new.denoise_source,
                    baseline_steps=bs.count if bs else None, new_steps=ns.count if ns else None,
                    baseline_mean_step_ms=bs.mean_ms if bs else None, new_mean_step_ms=ns.mean_ms if ns else None,
                    baseline_median_step_ms=bs.median_ms if bs else None,
                    new_median_step_ms=ns.median_ms if ns else None)


def _memory(base: PerfDump, new: PerfDump) -> MemoryVerdict:
    b, n = base.peak_reserved_gb, new.peak_reserved_gb
    return MemoryVerdict(baseline_peak_reserved_gb=b, new_peak_reserved_gb=n,
                         diff_gb=(n - b) if b is not None and n is not None else None)


# --- Markdown, in SGLang compare_perf.py's layout -------------------------------------------------------------

def _single_report(base: PerfDump, new: PerfDump, bg: _Grouped, ng: _Grouped, order: list[str]) -> list[str]:
    b_e2e, n_e2e = _e2e(base), _e2e(new)
    diff, pct = pct_diff(b_e2e, n_e2e)
    lines = ["#### 1. High-level Summary", "| Metric | Baseline | New | Diff | Status |",
             "| :--- | :--- | :--- | :--- | :--- |",
             f"| **E2E Latency** | {b_e2e:.2f} ms | {n_e2e:.2f} ms | **{diff:+.2f} ms ({pct:+.1f}%)** | "
             f"{PCT_MARK[pct_status(pct)]} |",
             f"| **Throughput** | {_throughput(b_e2e):.2f} req/s | {_throughput(n_e2e):.2f} req/s | - | - |",
             "\n", "#### 2. Stage Breakdown",
             "| Stage Name | Baseline (ms) | New (ms) | Diff (ms) | Diff (%) | Status |",
             "| :--- | :--- | :--- | :--- | :--- | :--- |"]
    for name in order:
        b, n = bg.durations.get(name, 0.0), ng.durations.get(name, 0.0)
        s_diff, s_pct = pct_diff(b, n)
        count = ""
        if name == DENOISE_GROUP:
            bc, nc = bg.counts.get(name, 1), ng.counts.get(name, 1)
            count = f" ({nc} steps)" if nc == bc else f" ({bc}->{nc} steps)"
        lines.append(f"| {name}{count} | {b:.2f} | {n:.2f} | {s_diff:+.2f} | {s_pct:+.1f}% | "
                     f"{BOUND_MARK[bound_status(b, n)]} |")
    return lines


def _multi_report(base: PerfDump, others: list[PerfDump], labels: list[str], bg: _Grouped,
                  ogs: list[_Grouped], order: list[str]) -> list[str]:
    head = "| Metric | Baseline | " + " | ".join(labels) + " |"
    sep = "| :--- | :--- | " + " | ".join([":---"] * len(labels)) + " |"
    b_e2e = _e2e(base)
    row = f"| **E2E Latency** | {b_e2e:.2f} ms |"
    for dump in others:
        _, pct = pct_diff(b_e2e, _e2e(dump))
        row += f" {_e2e(dump):.2f} ms ({pct:+.1f}%) {PCT_MARK[pct_status(pct)]} |"
    lines = ["#### 1. High-level Summary", head, sep, row, "\n", "#### 2. Stage Breakdown",
             "| Stage Name | Baseline | " + " | ".join(labels) + " |", sep]
    for name in order:
        b = bg.durations.get(name, 0.0)
        row = f"| {name} | {b:.2f} |"
        for grouped in ogs:
            n = grouped.durations.get(name, 0.0)
            _, pct = pct_diff(b, n)
            row += f" {n:.2f} ({pct:+.1f}%) {BOUND_MARK[bound_status(b, n)]} |"
        lines.append(row)
    return lines


def render_markdown(base: PerfDump, others: list[PerfDump], labels: list[str], now: datetime | None = None) -> str:
    """The report SGLang's compare_perf.py prints for these dumps (its stdout, less the final newline)."""
    bg, ogs = _Grouped(base), [_Grouped(d) for d in others]
    order = combined_order(bg, ogs)
    lines = ["### Performance Comparison Report\n"]
    if len(others) == 1:
        lines += _single_report(base, others[0], bg, ogs[0], order)
    else:
        lines += _multi_report(base, others, labels, bg, ogs, order)
    lines += ["\n", "<details>", "<summary>Metadata</summary>\n",
              f"- Baseline Commit: `{base.commit_display}`"]
    for label, dump in zip(labels, others):
        lines.append(f"- {'New' if len(others) == 1 else label} Commit: `{dump.commit_display}`")
    lines += [f"- Timestamp: {(now or datetime.now()).isoformat()}", "</details>"]
    return "\n".join(lines)


# --- Warnings ---------------------------------------------------------------------------------------------------

def _differs(label: str, values: list, what: str, code: str) -> Problem | None:
    known = [v for v in values if v is not None]
    if len(set(map(str, known))) > 1:
        return Problem(code=code, message=f"The dumps have different {what}: {', '.join(map(str, known))[:300]}.",
                       fix=f"Compare runs of the same {label}, or read the numbers as different workloads.")
    return None


def _facts_warnings(dumps: list[PerfDump]) -> list[Problem]:
    out: list[Problem] = []
    unknown = [d.source for d in dumps if d.facts is None]
    if unknown:
        out.append(Problem(
            code="run_facts_unknown",
            message=f"No .meta.json run facts for {', '.join(Path(u).name for u in unknown)}: whether those runs "
                    "were compiled and timed cold, had synchronized stage profiling, or used other GPUs or flags "
                    "is unknown.",
            fix="Run through run_generate, which writes the facts beside each dump."))
    for d in dumps:
        f, name = d.facts, Path(d.source).name
        if f is None:
            continue
        if f.compiled and f.warmup is False:
            out.append(Problem(code="compiled_cold", message=f"{name}: torch.compile was on and no warmup ran, so "
                               "compilation time is inside the timings.", fix="Rerun with warmup."))
        if f.sync_stage_profiling is False:
            out.append(Problem(code="stage_times_unsynchronized",
                               message=f"{name}: stage times were taken without SGLANG_DIFFUSION_SYNC_STAGE_PROFILING"
                                       "=1; GPU work can be attributed to a later stage.",
                               fix="Rerun with SGLANG_DIFFUSION_SYNC_STAGE_PROFILING=1 before comparing stages."))
    known = [d.facts for d in dumps if d.facts is not None]
    if len(known) > 1:
        for p in (_differs("GPUs", [tuple(f.gpus) if f.gpus else None for f in known], "GPUs", "different_gpus"),
                  _differs("sglang release", [f.sglang_version for f in known], "sglang versions",
                           "different_sglang_versions")):
            if p:
                out.append(p)
        flag_sets = [tuple(f.flags) for f in known if f.flags is not None]
        if len(set(flag_sets)) > 1:
            out.append(Problem(code="different_flags", message="The runs used different flags; that may be the point "
                               "of the comparison, but check that only the intended flags differ."))
    return out


def _warnings(dumps: list[PerfDump]) -> list[Problem]:
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


# --- Chart ------------------------------------------------------------------------------------------------------

def write_chart(order: list[str], base: _Grouped, others: list[_Grouped], labels: list[str]) -> tuple[str | None, Problem | None]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, Problem(code="charts_unavailable", message="matplotlib is not installed, so no chart was drawn.",
                             fix=CHARTS_HINT)
    names = order[:MAX_STAGES]
    series = [("baseline", base)] + list(zip(labels, others))
    key = hashlib.sha1(repr((names, [(l, [g.durations.get(n, 0.0) for n in names]) for l, g in series])).encode())
    out = state_home() / "charts" / f"compare-{key.hexdigest()[:16]}.png"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        width = 0.8 / len(series)
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(names)), 4.5))
        for i, (label, grouped) in enumerate(series):
            ax.bar([x + i * width for x in range(len(names))], [grouped.durations.get(n, 0.0) for n in names],
                   width, label=label)
        ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(names))])
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("ms")
        ax.set_title("Per-stage time")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out, dpi=100)
        plt.close(fig)
    except Exception as exc:  # a chart must never fail the comparison
        return None, Problem(code="chart_failed", message=f"Could not write the chart: {str(exc)[:200]}")
    return str(out), None


# --- The tool ---------------------------------------------------------------------------------------------------

def compare_dumps(base: PerfDump, others: list[PerfDump], labels: list[str], chart: bool = True) -> ComparePerfResult:
    """Compare parsed dumps (the first of `others` is `new`). Pure except for the optional chart file."""
    bg, ogs = _Grouped(base), [_Grouped(d) for d in others]
    order = combined_order(bg, ogs)
    runs = []
    for dump, grouped, label in zip(others, ogs, labels):
        rows, total, truncated = cap_list(_stage_rows(bg, grouped, order), MAX_STAGES)
        runs.append(RunComparison(
            label=label, source=dump.source, total=_verdict(_e2e(base), _e2e(dump)), denoise=_denoise(base, dump),
            throughput=Throughput(baseline_req_per_s=_throughput(_e2e(base)), new_req_per_s=_throughput(_e2e(dump))),
            stages=rows, stages_total=total, stages_truncated=truncated, memory=_memory(base, dump)))
    warnings = _warnings([base, *others])
    if base.total_ms is None or any(d.total_ms is None for d in others):
        warnings.append(Problem(code="missing_total", message="A dump has no total_duration_ms; it is read as 0 "
                                "ms, as SGLang's script does, so the E2E row is not meaningful."))
    chart_path = None
    if chart:
        chart_path, problem = write_chart(order, bg, ogs, labels)
        if problem:
            warnings.append(problem)
    first = runs[0]
    return ComparePerfResult(
        baseline=base.source, new=others[0].source, total=first.total, denoise=first.denoise,
        throughput=first.throughput, stages=first.stages, stages_total=first.stages_total,
        stages_truncated=first.stages_truncated, memory=first.memory, more=runs[1:],
        markdown=render_markdown(base, others, labels), chart_path=chart_path, warnings=warnings)


def compare_perf(baseline: str, new: str, more: list[str] | None = None, chart: bool = True) -> ComparePerfResult:
    """Compare sglang perf dumps: E2E total, denoise time (SGLang's primary metric), each stage and peak memory.

    `baseline` and `new` are perf-dump paths (--perf-dump-path) or run ids from run_generate; `more` adds
    further runs, each compared against the baseline. Statuses are faster/slower/similar with the same
    thresholds as SGLang's benchmarks/compare_perf.py (E2E and denoise: +-2 %; a stage: 10 % and 120 ms),
    and `markdown` is that script's report. Warns when the runs differ in model, prompt or steps, when a dump
    is from an old format, or when run facts (cold compiled run, unsynchronized stage timing, GPUs, flags)
    are known to differ or are unknown. `chart_path` is a PNG of the stages when matplotlib is installed.
    """
    more = list(more or [])
    if len(more) > MAX_MORE:
        raise ToolInputError("too_many_runs", f"{len(more)} further runs given; at most {MAX_MORE}.",
                             "Compare fewer runs at a time.", flag="more")
    refs = [baseline, new, *more]
    resolved = [resolve_dump(r) for r in refs]
    dumps = [load_perf_dump(path) for path, _ in resolved]
    labels = [label for _, label in resolved[1:]]
    return compare_dumps(dumps[0], dumps[1:], labels, chart=chart)
