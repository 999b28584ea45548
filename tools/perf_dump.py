"""Read the perf dump `sglang generate --perf-dump-path` writes, in the format of every release.

The dump is written by PerformanceLogger.dump_benchmark_report. Its keys by release (read from the wheels):
  0.5.6        timestamp, request_id, commit_hash, tag, total_duration_ms, steps, meta
               (`steps` is the list of *stages* [{name, duration_ms}]; no per-step denoise times)
  0.5.8        + denoise_steps_ms [{step, duration_ms}]
  0.5.9-0.5.18 + memory_checkpoints {name: {allocated_mb, reserved_mb, peak_allocated_mb, peak_reserved_mb}}
  0.5.19+      memory checkpoints also carry peak_host_anon_mb; load_peak/runtime_peak/warmup_peak checkpoints
`meta` is {prompt, model} from the CLI (tag cli_generate) or {model} from the server (tag server_perf_dump).

Denoise time follows SGLang's benchmark skill (bench_diffusion_denoise.py): the sum of the stages whose
name ends in DenoisingStage or RefinementStage (not *BeforeDenoisingStage), else the sum of the steps.
A `<dump>.meta.json` sidecar, written by run_generate, adds the run facts the dump lacks (RunFacts).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .problems import Problem, ToolInputError

MAX_DUMP_BYTES = 64 * 1024 * 1024
MIB_PER_GIB = 1024.0
STEP_STAGE = re.compile(r"^denoising_step_(\d+)$")
DENOISE_SUFFIXES = ("DenoisingStage", "RefinementStage")

# Dump layout id -> (first release, last release or None) that writes it.
FORMATS: dict[str, tuple[str, str | None]] = {
    "stages_only": ("0.5.6", "0.5.6"),
    "with_steps": ("0.5.8", "0.5.8"),
    "with_memory": ("0.5.9", "0.5.18"),
    "with_host_memory": ("0.5.19", None),
}


class VersionRange(BaseModel):
    since: str | None = Field(default=None, description="First sglang release that writes this format.")
    until: str | None = Field(default=None, description="Last sglang release that writes it; null if still current.")


class RunFacts(BaseModel):
    """Facts about a run that the perf dump does not record; run_generate writes them to `<dump>.meta.json`."""

    model_config = ConfigDict(extra="allow")

    run_id: str | None = None
    sglang_version: str | None = None
    model: str | None = None
    prompt: str | None = None
    num_inference_steps: int | None = None
    width: int | None = None
    height: int | None = None
    num_frames: int | None = None
    compiled: bool | None = Field(default=None, description="torch.compile was on (--enable-torch-compile).")
    warmup: bool | None = Field(default=None, description="A warmup request ran before the timed one.")
    sync_stage_profiling: bool | None = Field(default=None, description="SGLANG_DIFFUSION_SYNC_STAGE_PROFILING=1.")
    gpus: list[str] | None = Field(default=None, description="GPU names (or indices) the run used.")
    flags: list[str] | None = Field(default=None, description="The sglang argv after `generate`, secrets redacted.")
    profile: bool | None = Field(default=None, description="Run with sglang's torch profiler (--profile).")
    status: str | None = Field(default=None, description="The run's final status (succeeded, failed, ...).")
    error_code: str | None = None
    warmup_excluded_s: float | None = Field(default=None, description="The '(with warmup excluded)' time; null "
                                            "when warmup was on means the request ran cold.")
    hardware: str | None = None

    def known(self, key: str) -> bool:
        """The sidecar states this fact (even as null)."""
        return key in self.model_fields_set


# --- run_generate's own flags --------------------------------------------------------------------------------
# run_generate adds these to every run (paths into the run folder); they differ between any two runs.
RUN_GENERATE_FLAGS = frozenset({"--perf-dump-path", "--output-path", "--output-file-name"})
# ...and these when the caller did not set them (warmup, debug logging for the VRAM line, the profiler). Without
# the run record's `additions` they are assumed to be run_generate's.
RUN_GENERATE_DEFAULT_FLAGS = frozenset({"--warmup", "--warmup-mode", "--log-level", "--profile"})
PROFILER_FLAGS = frozenset({"--profile", "--profile-all-stages", "--num-profiled-timesteps"})
PROFILER_ENVS = frozenset({"SGLANG_DIFFUSION_TORCH_PROFILER_DIR", "SGLANG_TORCH_PROFILER_DIR"})


def _flag_name(token: str) -> str:
    head = token.split("=", 1)[0]
    return "--" + head[2:].replace("_", "-")


def flag_groups(tokens: list[str]) -> list[tuple[str, list[str], list[str]]]:
    """argv tokens -> [(flag name or '' for leading non-flags, values, original tokens)]."""
    groups: list[tuple[str, list[str], list[str]]] = []
    for tok in tokens:
        tok = str(tok)
        if tok.startswith("--"):
            name = _flag_name(tok)
            groups.append((name, [tok.split("=", 1)[1]] if "=" in tok else [], [tok]))
        elif groups:
            groups[-1][1].append(tok)
            groups[-1][2].append(tok)
        else:
            groups.append(("", [tok], [tok]))
    return groups


def added_flag_names(additions: Any) -> set[str] | None:
    """Flag names from a run record's `additions`; None when the record does not list them."""
    if not isinstance(additions, list):
        return None
    return {_flag_name(a["name"]) for a in additions if isinstance(a, dict) and a.get("kind") == "flag"
            and isinstance(a.get("name"), str) and a["name"].startswith("--")}


def added_env_names(additions: Any) -> set[str]:
    if not isinstance(additions, list):
        return set()
    return {a["name"] for a in additions if isinstance(a, dict) and a.get("kind") == "env"
            and isinstance(a.get("name"), str)}


def user_flags(tokens: list[str], added: set[str] | None = None, drop: frozenset[str] = frozenset()) -> list[str]:
    """The argv less what run_generate added: `added` from the record's additions, else the usual ones."""
    skip = RUN_GENERATE_FLAGS | (RUN_GENERATE_DEFAULT_FLAGS if added is None else added) | drop
    return [t for name, _, toks in flag_groups(tokens) if name not in skip for t in toks]


def flag_differences(a: list[str], b: list[str], limit: int = 8) -> list[str]:
    """'--flag (A vs B)' for each flag set differently; 'absent' / 'set' for a missing or bare flag."""
    def as_map(tokens: list[str]) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for name, values, _ in flag_groups(tokens):
            if name:
                out[name] = tuple(values)
        return out

    def show(values: tuple[str, ...] | None) -> str:
        if values is None:
            return "absent"
        text = " ".join(values) if values else "set"
        return text if len(text) <= 40 else text[:37] + "..."

    ma, mb = as_map(a), as_map(b)
    names = list(dict.fromkeys([*ma, *mb]))
    diffs = [f"{n} ({show(ma.get(n))} vs {show(mb.get(n))})" for n in names if ma.get(n) != mb.get(n)]
    return diffs if len(diffs) <= limit else diffs[:limit] + [f"and {len(diffs) - limit} more"]


class StageTime(BaseModel):
    name: str
    duration_ms: float
    is_denoising: bool = False


class StepStats(BaseModel):
    count: int
    total_ms: float
    mean_ms: float
    median_ms: float
    min_ms: float
    max_ms: float


class MemoryCheckpoint(BaseModel):
    name: str
    allocated_gb: float | None = Field(default=None, description="GiB.")
    reserved_gb: float | None = Field(default=None, description="GiB.")
    peak_allocated_gb: float | None = Field(default=None, description="GiB.")
    peak_reserved_gb: float | None = Field(default=None, description="GiB.")
    peak_host_anon_gb: float | None = Field(default=None, description="Peak anonymous host memory, GiB (0.5.19+).")


class PerfDump(BaseModel):
    """One perf dump, parsed; per-step times stay out of the serialized form (they can be thousands)."""

    source: str = Field(description="The file path (or a label) the dump came from.")
    format: str = Field(description="Layout id: stages_only, with_steps, with_memory or with_host_memory.")
    versions: VersionRange
    total_ms: float | None = None
    denoise_ms: float | None = Field(default=None, description="SGLang's primary metric.")
    denoise_source: str | None = Field(default=None, description="'stages' or 'steps': where denoise_ms came from.")
    stages: list[StageTime] = Field(default_factory=list)
    steps: StepStats | None = None
    memory: list[MemoryCheckpoint] = Field(default_factory=list)
    peak_reserved_gb: float | None = Field(default=None, description="Max peak reserved over the checkpoints, GiB.")
    model: str | None = None
    prompt: str | None = None
    tag: str | None = None
    request_id: str | None = None
    commit_hash: str | None = None
    timestamp: str | None = None
    facts: RunFacts | None = Field(default=None, description="From the .meta.json sidecar, when there is one.")
    problems: list[Problem] = Field(default_factory=list)

    _raw_stages: list[tuple[str, float]] = PrivateAttr(default_factory=list)
    _step_times: list[float] = PrivateAttr(default_factory=list)
    _commit_display: str = PrivateAttr(default="N/A")

    @property
    def raw_stages(self) -> list[tuple[str, float]]:
        """Stage entries exactly as listed in the dump (name, ms), the way SGLang's compare_perf reads them."""
        return self._raw_stages

    @property
    def step_times_ms(self) -> list[float]:
        return self._step_times

    @property
    def commit_display(self) -> str:
        """commit_hash as SGLang's report prints it: 'N/A' only when the key is missing."""
        return self._commit_display


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _gb(value: Any) -> float | None:
    mb = _number(value)
    return None if mb is None else mb / MIB_PER_GIB


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def is_denoise_stage(name: str) -> bool:
    return name.endswith(DENOISE_SUFFIXES) and "BeforeDenoisingStage" not in name


def _stages(data: dict, problems: list[Problem]) -> tuple[list[tuple[str, float]], list[float]]:
    raw = data.get("steps")
    if raw is None:
        problems.append(Problem(code="no_stages", message="The dump has no `steps` (stage list).",
                                fix="Check that this is an sglang perf dump (--perf-dump-path)."))
        return [], []
    if not isinstance(raw, list):
        problems.append(Problem(code="bad_stages", message="The dump's `steps` is not a list; stages ignored."))
        return [], []
    stages, legacy_steps, skipped = [], [], 0
    for item in raw:
        if not isinstance(item, dict):
            skipped += 1
            continue
        name = item.get("name", "unknown")
        duration = item.get("duration_ms", 0.0)
        ms = _number(duration)
        if not isinstance(name, str) or ms is None:
            skipped += 1
            continue
        stages.append((name, ms))
        if STEP_STAGE.match(name):
            legacy_steps.append(ms)
    if skipped:
        problems.append(Problem(code="bad_stage_entries",
                                message=f"{skipped} stage entries lacked a name or a numeric duration_ms; skipped."))
    if not stages:
        problems.append(Problem(code="empty_stages", message="The dump lists no stages.",
                                fix="Stage times need --perf-dump-path (or SGLANG_DIFFUSION_STAGE_LOGGING=1)."))
    return stages, legacy_steps


def _steps(data: dict, problems: list[Problem]) -> list[float] | None:
    raw = data.get("denoise_steps_ms")
    if raw is None:
        return None
    if not isinstance(raw, list):
        problems.append(Problem(code="bad_steps", message="`denoise_steps_ms` is not a list; steps ignored."))
        return []
    times = []
    for item in raw:
        ms = _number(item.get("duration_ms")) if isinstance(item, dict) else _number(item)
        if ms is not None:
            times.append(ms)
    if len(times) < len(raw):
        problems.append(Problem(code="bad_step_entries",
                                message=f"{len(raw) - len(times)} denoise step entries had no numeric duration_ms."))
    return times


def _memory(data: dict, problems: list[Problem]) -> list[MemoryCheckpoint] | None:
    raw = data.get("memory_checkpoints")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(Problem(code="bad_memory", message="`memory_checkpoints` is not an object; ignored."))
        return []
    out = []
    for name, snap in raw.items():
        if not isinstance(snap, dict):
            continue
        out.append(MemoryCheckpoint(
            name=str(name), allocated_gb=_gb(snap.get("allocated_mb")), reserved_gb=_gb(snap.get("reserved_mb")),
            peak_allocated_gb=_gb(snap.get("peak_allocated_mb")), peak_reserved_gb=_gb(snap.get("peak_reserved_mb")),
            peak_host_anon_gb=_gb(snap.get("peak_host_anon_mb")),
        ))
    return out


def step_stats(times: list[float]) -> StepStats | None:
    if not times:
        return None
    return StepStats(count=len(times), total_ms=sum(times), mean_ms=statistics.fmean(times),
                     median_ms=statistics.median(times), min_ms=min(times), max_ms=max(times))


def _layout(steps: list[float] | None, memory: list[MemoryCheckpoint] | None, raw: dict) -> str:
    if memory is not None:
        snaps = raw.get("memory_checkpoints")
        snaps = snaps.values() if isinstance(snaps, dict) else []
        host = any(isinstance(s, dict) and "peak_host_anon_mb" in s for s in snaps)
        return "with_host_memory" if host else "with_memory"
    return "with_steps" if steps is not None else "stages_only"


def parse_perf_dump(data: Any, source: str = "<dump>") -> PerfDump:
    """Parse a loaded perf-dump object. Never raises for odd content: what is missing goes to `problems`."""
    if not isinstance(data, dict):
        raise ToolInputError("bad_perf_dump", f"{source} is JSON but not an object, so not an sglang perf dump.",
                             "Pass the file written by `sglang generate --perf-dump-path`.")
    problems: list[Problem] = []
    total = _number(data.get("total_duration_ms"))
    if total is None:
        problems.append(Problem(code="no_total", message="The dump has no numeric total_duration_ms."))
    stages_raw, legacy_steps = _stages(data, problems)
    steps = _steps(data, problems)
    memory = _memory(data, problems)
    layout = _layout(steps, memory, data)
    step_times = steps if steps else legacy_steps
    if steps is None:
        problems.append(Problem(
            code="old_format_no_steps",
            message=f"{source} has no per-step denoise times (format of sglang {FORMATS[layout][0]}).",
            fix="Step statistics need sglang 0.5.8 or newer; totals and stages still compare."))

    denoise_parts = [ms for name, ms in stages_raw if is_denoise_stage(name)]
    if denoise_parts and sum(denoise_parts) > 0:
        denoise, denoise_source = sum(denoise_parts), "stages"
    elif step_times:
        denoise, denoise_source = sum(step_times), "steps"
    else:
        denoise, denoise_source = None, None

    peaks = [m.peak_reserved_gb for m in memory or [] if m.peak_reserved_gb is not None]
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    since, until = FORMATS[layout]
    dump = PerfDump(
        source=source, format=layout, versions=VersionRange(since=since, until=until), total_ms=total,
        denoise_ms=denoise, denoise_source=denoise_source,
        stages=[StageTime(name=n, duration_ms=ms, is_denoising=is_denoise_stage(n)) for n, ms in stages_raw[:200]],
        steps=step_stats(step_times), memory=memory or [], peak_reserved_gb=max(peaks) if peaks else None,
        model=_text(meta.get("model")), prompt=_text(meta.get("prompt")), tag=_text(data.get("tag")),
        request_id=_text(data.get("request_id")), commit_hash=_text(data.get("commit_hash")),
        timestamp=_text(data.get("timestamp")), problems=problems,
    )
    dump._raw_stages = stages_raw
    dump._step_times = step_times
    dump._commit_display = str(data["commit_hash"]) if "commit_hash" in data else "N/A"
    return dump


def sidecar_path(dump_path: Path) -> Path:
    return dump_path.with_name(dump_path.name + ".meta.json")


def read_run_facts(dump_path: Path) -> tuple[RunFacts | None, Problem | None]:
    """The run facts beside a dump, if run_generate wrote them; a bad sidecar is a warning, not an error."""
    path = sidecar_path(dump_path)
    if not path.is_file():
        return None, None
    try:
        return RunFacts.model_validate(json.loads(path.read_text(encoding="utf-8"))), None
    except (OSError, ValueError) as exc:
        return None, Problem(code="bad_sidecar", message=f"Could not read {path.name}: {str(exc)[:200]}",
                             fix="Run facts (compiled, warmup, GPUs, flags) are treated as unknown.")


def load_perf_dump(path: str | Path) -> PerfDump:
    """Read and parse a perf dump file (and its .meta.json sidecar). Unreadable or non-JSON input is a ToolInputError."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ToolInputError("perf_dump_not_found", f"No perf dump at {p}.",
                             "Pass the path given to --perf-dump-path, or a run_id from run_generate.")
    try:
        size = p.stat().st_size
        if size > MAX_DUMP_BYTES:
            raise ToolInputError("perf_dump_too_large", f"{p} is {size} bytes; perf dumps are far smaller.",
                                 "Pass the JSON file written by --perf-dump-path.")
        data = json.loads(p.read_bytes())
    except ToolInputError:
        raise
    except (OSError, ValueError, RecursionError) as exc:
        raise ToolInputError("bad_perf_dump", f"{p} is not a JSON perf dump ({type(exc).__name__}: {str(exc)[:160]}).",
                             "Pass the file written by `sglang generate --perf-dump-path`.") from None
    dump = parse_perf_dump(data, str(p))
    facts, problem = read_run_facts(p)
    dump.facts = facts
    if problem:
        dump.problems.append(problem)
    return dump
