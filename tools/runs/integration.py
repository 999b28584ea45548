"""run_generate's adapters to the tools built beside it: each reshapes another tool's result for a run."""

from __future__ import annotations

import os
from typing import Any

from ...knowledge import loader
from ..check_command import check_argv
from ..detect_gpus import detect_gpus
from ..hardware_spec import hardware_from_detection, parse_hardware_spec
from ..perf_dump import load_perf_dump
from ..planning.inputs import resolve_version
from ..problems import Problem, ToolInputError
from ..vram_log import parse_vram_log as _parse_vram_log

_VRAM_KEEP = ("format", "log_level", "peak_reserved_gb", "peak_allocated_gb", "pool_overhead_gb", "pool_overhead_pct",
              "headroom_gb", "components_can_stay_resident", "flags_to_disable", "suggested_changes", "oom",
              "max_peak_mb", "summary", "warnings", "improved_command")


def check_command(argv: list[str], version: str | None, hardware: str | None) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) for an `sglang generate` argv on this host's GPUs (`hardware`, a spec from detection)."""
    hw = parse_hardware_spec(hardware) if hardware else None  # detected already: never detect twice
    warnings: list[Problem] = []
    result = check_argv(list(argv), resolve_version(version, warnings), hw, warnings=warnings)
    # a run uses this host's GPUs, whatever they are: there is no hardware spec to plan against
    return result.errors, [w for w in result.warnings if w.code != "hardware_unknown"]


def detect_idle_gpus() -> tuple[list[int] | None, str | None, str | None]:
    """(idle GPU indices, GPU type, this host's hardware spec for check_command), or Nones with no GPU."""
    result = detect_gpus()
    if not result.gpu_count:
        return None, None, None
    first = result.gpus[0]
    try:
        spec = hardware_from_detection(result, use="all").spec
    except ToolInputError:  # e.g. only MIG slices: check without a hardware spec
        spec = None
    return list(result.idle_gpus), first.kb_gpu or first.name, spec


def parse_perf_dump(path: str) -> dict[str, Any]:
    """The perf dump as the run result carries it: times in ms, memory checkpoints, the reserved peak in GiB."""
    dump = load_perf_dump(path)
    steps = dump.steps
    return {
        "total_ms": dump.total_ms, "denoise_ms": dump.denoise_ms,
        "stages": [{"name": s.name, "ms": s.duration_ms} for s in dump.stages],
        "steps": {"count": steps.count, "mean_ms": steps.mean_ms, "median_ms": steps.median_ms} if steps
        else {"count": 0},
        "memory_checkpoints": {m.name: {k: v for k, v in m.model_dump().items() if k != "name" and v is not None}
                               for m in dump.memory[:20]},
        "peak_reserved_gb": dump.peak_reserved_gb,
    }


def parse_vram_log(lines: list[str], log_path: str | None = None, version: str | None = None,
                   command: list[str] | None = None) -> dict[str, Any] | None:
    """The VRAM analysis sglang printed, read by parse_vram_log from the log file (or the collected lines).

    `command` is the run's argv: suggested_changes and improved_command are then relative to what ran."""
    if log_path and os.path.exists(log_path):
        source = {"log_path": log_path}
    elif lines:
        source = {"text": "\n".join(lines)}
    else:
        return None  # e.g. a run cancelled while queued never wrote a log
    data = _parse_vram_log(**source, command=command or None, sglang_version=version).model_dump(mode="json")
    return {k: data.get(k) for k in _VRAM_KEEP}


def model_is_gated(model: str) -> bool:
    wanted = model.strip().lower()
    return any(wanted in (i.lower() for i in entry.hf_ids) and entry.gated for entry in loader.load("models"))
