"""compare_perf: compare two or more sglang perf dumps the way SGLang's own benchmarks/compare_perf.py does.

SGLang's rules (sglang/multimodal_gen/benchmarks/compare_perf.py, unchanged from 0.5.8 to 0.5.23), reimplemented:
  - E2E status from the percent difference: below -2 % faster, above +2 % slower, else similar.
  - Stage status from bounds: slower above max(b*1.1, b+120 ms), faster below min(b*0.9, b-120 ms).
  - `denoising_step_N` stage entries are summed into one "Denoising Loop" row; repeated names are summed.
  - Stage order: the newest dump's order first, then names only the older ones have.
  - diff % is 0 when the baseline is 0.
Denoise time (not in SGLang's report) uses the E2E percent rule.

Where SGLang's script reads a missing total or stage as 0 ms, `markdown` keeps its output, but the structured
verdicts are null (no diff, percentage, speedup or status) and a warning says so: 0 ms is not a measurement.
A run id with several repeats is compared through its median repeat (by total time), named in a warning.
The markdown returned is capped at MAX_MD_ROWS stage rows; the full report is written under the state
directory (`markdown_path`).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from ..server.settings import state_home
from .perf_dump import PerfDump, load_perf_dump
from .perf_warnings import comparability_warnings
from .problems import Problem, ToolInputError, cap_list
from .runs import store

FASTER, SLOWER, SIMILAR = "faster", "slower", "similar"
E2E_PCT = 2.0
STAGE_REL_TOL, STAGE_ABS_TOL_MS = 0.1, 120.0
DENOISE_GROUP = "Denoising Loop"
STEP_STAGE = re.compile(r"^denoising_step_(\d+)$")
MAX_STAGES = 40
MAX_MORE_STAGES = 10  # per further run: nine runs of 40 stages would not stay small
MAX_MD_ROWS = 40
MAX_MD_CHARS = 24_000
MAX_WARNINGS = 30
MAX_NAME = 160
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
    baseline_req_per_s: float | None = Field(default=None, description="Null when that side has no total.")
    new_req_per_s: float | None = None


class StageVerdict(BaseModel):
    name: str
    baseline_ms: float | None = Field(default=None, description="Null when the baseline lacks this stage.")
    new_ms: float | None = Field(default=None, description="Null when the new run lacks this stage.")
    diff_ms: float | None = None
    diff_pct: float | None = None
    status: str | None = Field(default=None, description="faster, slower or similar; null for a one-sided stage.")
    only_in: str | None = Field(default=None, description="'baseline' or 'new' when only one side has the stage.")
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
    markdown: str = Field(description="SGLang compare_perf.py's report, same layout, marks and thresholds; "
                                      f"capped at {MAX_MD_ROWS} stage rows (the full one is at markdown_path).")
    markdown_path: str | None = Field(default=None, description="The full Markdown report, under the state "
                                                                "directory; null if it could not be written.")
    markdown_truncated: bool = False
    chart_path: str | None = Field(default=None, description="PNG of the per-stage comparison, or null.")
    warnings: list[Problem] = Field(default_factory=list)


def _dump_total(path: Path) -> float | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    value = data.get("total_duration_ms") if isinstance(data, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def run_perf_choice(run_id: str) -> tuple[Path | None, Problem | None]:
    """The perf dump that stands for a run: its only one, or with repeats the median repeat by total time."""
    if not isinstance(run_id, str) or not store.valid_run_id(run_id):
        return None, None
    record = store.read_record(store.run_dir(str(state_home()), run_id)) or {}
    listed = [p for p in record.get("perf_paths") or [] if isinstance(p, str)]
    paths = [(i + 1, Path(p)) for i, p in enumerate(listed) if Path(p).is_file()]
    if len(paths) <= 1:
        return (paths[0][1] if paths else None), None
    timed = sorted((t, i, p) for i, p in paths if (t := _dump_total(p)) is not None)
    if not timed:
        i, p = paths[0]
        return p, Problem(code="repeat_first", message=f"Run {run_id} has {len(paths)} repeats and none has a "
                          f"total time; compared repeat {i} ({p.name}).", fix="Pass another repeat's perf-dump path "
                          "to compare it instead.")
    total, i, p = timed[(len(timed) - 1) // 2]
    values = ", ".join(f"{t:.0f}" for t, _, _ in sorted(timed, key=lambda x: x[1]))
    return p, Problem(code="median_repeat", message=f"Run {run_id} has {len(paths)} repeats; compared repeat {i} "
                      f"({p.name}), the median by total time ({total:.0f} ms; repeats: {values} ms).",
                      fix="Pass a perf-dump path to compare one repeat in particular.")


def run_perf_path(run_id: str) -> Path | None:
    """The perf dump that stands for a run (the median repeat when it has several); None if there is none."""
    return run_perf_choice(run_id)[0]


def resolve_ref(ref: str) -> tuple[Path, str, list[Problem]]:
    """A perf-dump path or a run id -> (path, label, notes). Labels are file names, as SGLang uses them."""
    if not isinstance(ref, str) or not ref.strip():
        raise ToolInputError("bad_perf_ref", "A perf dump reference is empty.", "Pass a perf-dump path or a run_id.")
    path = Path(ref).expanduser()
    if path.is_file():
        return path, path.name, []
    from_run, note = run_perf_choice(ref)
    if from_run is not None:
        return from_run, ref, [note] if note else []
    raise ToolInputError("perf_dump_not_found", f"{ref!r} is neither a perf-dump file nor a run with a perf dump.",
                         "Pass the --perf-dump-path file, or a run_id from run_generate/list_runs.")


def resolve_dump(ref: str) -> tuple[Path, str]:
    """A perf-dump path or a run id -> (path, label)."""
    path, label, _ = resolve_ref(ref)
    return path, label


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
    base, new = _measured(base), _measured(new)
    if base is None or new is None:
        return cls(baseline_ms=base, new_ms=new, **extra)
    diff, pct = pct_diff(base, new)
    return cls(baseline_ms=base, new_ms=new, diff_ms=diff, diff_pct=pct, speedup=(base / new) if new else None,
               status=pct_status(pct), **extra)


def _measured(ms: float | None) -> float | None:
    """A time that is a measurement: a missing or non-positive one is not (SGLang prints it as 0 ms)."""
    return ms if ms is not None and ms > 0 else None


def _e2e(dump: PerfDump) -> float:
    # SGLang reads a missing total as 0 (markdown only; the structured verdicts use _measured).
    return dump.total_ms if dump.total_ms is not None else 0.0


def _throughput(ms: float) -> float:
    return 1000 / ms if ms else 0.0


def _req_per_s(ms: float | None) -> float | None:
    ms = _measured(ms)
    return None if ms is None else 1000 / ms


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
        counts = dict(baseline_count=base.counts.get(name, 0), new_count=new.counts.get(name, 0))
        shown = name if len(name) <= MAX_NAME else name[:MAX_NAME - 3] + "..."
        if name not in base.durations or name not in new.durations:
            # SGLang reads the missing side as 0 ms, which would read as -100 % "faster" or an unbounded "slower"
            rows.append(StageVerdict(name=shown, baseline_ms=base.durations.get(name), new_ms=new.durations.get(name),
                                     only_in="baseline" if name in base.durations else "new", **counts))
            continue
        b, n = base.durations[name], new.durations[name]
        diff, pct = pct_diff(b, n)
        rows.append(StageVerdict(name=shown, baseline_ms=b, new_ms=n, diff_ms=diff, diff_pct=pct,
                                 status=bound_status(b, n), **counts))
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

def _more_rows(hidden: int, columns: int) -> list[str]:
    if hidden <= 0:
        return []
    return [f"| _… {hidden} more stages in markdown_path_ |" + " |" * (columns - 1)]


def _single_report(base: PerfDump, new: PerfDump, bg: _Grouped, ng: _Grouped, order: list[str],
                   hidden: int = 0) -> list[str]:
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
    return lines + _more_rows(hidden, 6)


def _multi_report(base: PerfDump, others: list[PerfDump], labels: list[str], bg: _Grouped,
                  ogs: list[_Grouped], order: list[str], hidden: int = 0) -> list[str]:
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
    return lines + _more_rows(hidden, 2 + len(labels))


def render_markdown(base: PerfDump, others: list[PerfDump], labels: list[str], now: datetime | None = None,
                    max_rows: int | None = None) -> str:
    """The report SGLang's compare_perf.py prints for these dumps (its stdout, less the final newline).

    With `max_rows`, stage rows past it are summarized in one row that points to markdown_path.
    """
    bg, ogs = _Grouped(base), [_Grouped(d) for d in others]
    order = combined_order(bg, ogs)
    hidden = max(0, len(order) - max_rows) if max_rows is not None else 0
    shown = order[:len(order) - hidden]
    lines = ["### Performance Comparison Report\n"]
    if len(others) == 1:
        lines += _single_report(base, others[0], bg, ogs[0], shown, hidden)
    else:
        lines += _multi_report(base, others, labels, bg, ogs, shown, hidden)
    lines += ["\n", "<details>", "<summary>Metadata</summary>\n",
              f"- Baseline Commit: `{base.commit_display}`"]
    for label, dump in zip(labels, others):
        lines.append(f"- {'New' if len(others) == 1 else label} Commit: `{dump.commit_display}`")
    lines += [f"- Timestamp: {(now or datetime.now()).isoformat()}", "</details>"]
    return "\n".join(lines)


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

def _missing_total_warnings(base: PerfDump, others: list[PerfDump]) -> list[Problem]:
    missing = [Path(d.source).name for d in (base, *others) if _measured(d.total_ms) is None]
    if not missing:
        return []
    return [Problem(code="missing_total", message=f"No total time in {', '.join(missing)} (total_duration_ms "
                    "missing, not a number, or 0): the markdown shows it as 0 ms, as SGLang's script does, but the "
                    "structured total, speedup and status are null.",
                    fix="Compare dumps of runs that finished (sglang generate --perf-dump-path).")]


def _one_sided_warning(rows: list[StageVerdict], label: str) -> Problem | None:
    one = [r for r in rows if r.only_in]
    if not one:
        return None
    names = ", ".join(f"{r.name} ({r.only_in} only)" for r in one[:6]) + (f" and {len(one) - 6} more"
                                                                           if len(one) > 6 else "")
    return Problem(code="stages_one_side", message=f"{label}: {len(one)} stage(s) exist on one side only: {names}. "
                   "Their status is null; the markdown shows the missing side as 0 ms, as SGLang's script does.",
                   fix="Compare runs of the same pipeline, or read those stages as added or removed work.")


def _write_markdown(full: str) -> tuple[str | None, Problem | None]:
    # content-addressed on the report less its timestamp, so the same comparison reuses one file
    key = hashlib.sha1(re.sub(r"(?m)^- Timestamp: .*$", "", full).encode()).hexdigest()[:16]
    out = state_home() / "compare" / f"compare-{key}.md"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(full + "\n", encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        return None, Problem(code="markdown_not_written", message=f"Could not write the full report: {exc}.")
    return str(out), None


def _capped_markdown(base: PerfDump, others: list[PerfDump], labels: list[str]) -> tuple[str, str, bool]:
    now = datetime.now()
    full = render_markdown(base, others, labels, now)
    capped = render_markdown(base, others, labels, now, max_rows=MAX_MD_ROWS)
    if len(capped) > MAX_MD_CHARS:  # absurd stage names or commit strings
        capped = capped[:MAX_MD_CHARS] + "\n\n_… report cut here: the full one is at markdown_path._"
    return full, capped, capped != full


def compare_dumps(base: PerfDump, others: list[PerfDump], labels: list[str], chart: bool = True) -> ComparePerfResult:
    """Compare parsed dumps (the first of `others` is `new`). Writes the full report (and the chart) to files."""
    bg, ogs = _Grouped(base), [_Grouped(d) for d in others]
    order = combined_order(bg, ogs)
    runs = []
    warnings = comparability_warnings([base, *others]) + _missing_total_warnings(base, others)
    for i, (dump, grouped, label) in enumerate(zip(others, ogs, labels)):
        all_rows = _stage_rows(bg, grouped, order)
        if (p := _one_sided_warning(all_rows, label)) is not None:
            warnings.append(p)
        rows, total, truncated = cap_list(all_rows, MAX_STAGES if i == 0 else MAX_MORE_STAGES)
        runs.append(RunComparison(
            label=label, source=dump.source, total=_verdict(base.total_ms, dump.total_ms),
            denoise=_denoise(base, dump),
            throughput=Throughput(baseline_req_per_s=_req_per_s(base.total_ms), new_req_per_s=_req_per_s(dump.total_ms)),
            stages=rows, stages_total=total, stages_truncated=truncated, memory=_memory(base, dump)))
    full, markdown, md_truncated = _capped_markdown(base, others, labels)
    markdown_path, problem = _write_markdown(full)
    if problem:
        warnings.append(problem)
    chart_path = None
    if chart:
        chart_path, problem = write_chart(order, bg, ogs, labels)
        if problem:
            warnings.append(problem)
    if len(warnings) > MAX_WARNINGS:
        more = len(warnings) - MAX_WARNINGS + 1
        warnings = warnings[:MAX_WARNINGS - 1] + [Problem(code="more_warnings", message=f"{more} more warnings "
                                                          "left out.")]
    first = runs[0]
    return ComparePerfResult(
        baseline=base.source, new=others[0].source, total=first.total, denoise=first.denoise,
        throughput=first.throughput, stages=first.stages, stages_total=first.stages_total,
        stages_truncated=first.stages_truncated, memory=first.memory, more=runs[1:],
        markdown=markdown, markdown_path=markdown_path, markdown_truncated=md_truncated, chart_path=chart_path,
        warnings=warnings)


def compare_perf(baseline: str, new: str, more: list[str] | None = None, chart: bool = True) -> ComparePerfResult:
    """Compare sglang perf dumps: E2E total, denoise time (SGLang's primary metric), each stage and peak memory.

    `baseline` and `new` are perf-dump paths (--perf-dump-path) or run ids from run_generate (a run with
    repeats is compared through its median repeat); `more` adds further runs, each compared against the
    baseline. Statuses are faster/slower/similar with the same thresholds as SGLang's benchmarks/compare_perf.py
    (E2E and denoise: +-2 %; a stage: 10 % and 120 ms); they are null where a side has no total or lacks a
    stage. `markdown` is that script's report, capped at 40 stage rows; the full one is at `markdown_path`.
    Warns when the runs differ in model, prompt, steps, GPUs or flags (naming them), when a dump is from an
    old format, a profiled, failed or cold run, or has unsynchronized stage timing, and says which run facts
    are unknown. `chart_path` is a PNG of the stages when matplotlib is installed.
    """
    more = list(more or [])
    if len(more) > MAX_MORE:
        raise ToolInputError("too_many_runs", f"{len(more)} further runs given; at most {MAX_MORE}.",
                             "Compare fewer runs at a time.", flag="more")
    refs = [baseline, new, *more]
    resolved = [resolve_ref(r) for r in refs]
    dumps = [load_perf_dump(path) for path, _, _ in resolved]
    labels = [label for _, label, _ in resolved[1:]]
    result = compare_dumps(dumps[0], dumps[1:], labels, chart=chart)
    notes = [note for _, _, notes in resolved for note in notes]
    result.warnings = notes + result.warnings
    return result
