"""Seams to the parts of the project built beside run_generate, in ONE place.

Each function first uses the project module that owns the job, if it is installed and has the
expected function; otherwise a minimal local stand-in with the same role. Swap a stand-in for the
real thing here, and nowhere else:

| seam                      | owner module (expected name)                                   |
|---------------------------|----------------------------------------------------------------|
| warmup_argv               | knowledge/releases.py  warmup_argv(version) -> list[str]       |
| vram_log_argv             | knowledge/releases.py  vram_log_argv(version) -> list[str]      |
| (unknown flags fallback)  | knowledge/releases.py  flag_names(version), known_versions()    |
| check_command             | tools/check_command.py check_command(argv=..., sglang_version=..) |
| detect_idle_gpus          | tools/detect_gpus.py   detect_gpus() -> DetectGpusResult         |
| parse_perf_dump           | tools/perf_dump.py     load_perf_dump(path) -> PerfDump         |
| parse_vram_log            | tools/vram_log.py      parse_vram_log(log_path=, sglang_version=)|
| model_is_gated            | knowledge models.yaml  Model.gated by hf_ids                    |
"""

from __future__ import annotations

import importlib
import json
import re
import statistics
from typing import Any

from ..problems import Problem


def _optional(module: str, name: str):
    """The function `name` of `module`, or None if either is not there yet."""
    try:
        mod = importlib.import_module(module, __package__)
    except ImportError:
        return None
    return getattr(mod, name, None)


# -- release table ------------------------------------------------------------------------------------

def version_key(version: str) -> tuple[int, ...]:
    """0.5.10.post1 -> (0, 5, 10, 1); a base release sorts before its posts. Unparsable -> (0,)."""
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)(?:\.post(\d+))?", version or "")
    if not m:
        return (0,)
    return (int(m[1]), int(m[2]), int(m[3]), int(m[4]) if m[4] else -1)


def warmup_argv(version: str) -> list[str]:
    """The flags that switch warmup on: `--warmup` up to 0.5.13, `--warmup-mode request` from 0.5.14."""
    real = _optional("...knowledge.releases", "warmup_argv")
    if real is not None:
        try:
            return list(real(version))
        except Exception:
            pass
    return ["--warmup"] if version_key(version) < (0, 5, 14) else ["--warmup-mode", "request"]


def vram_log_argv(version: str) -> list[str]:
    """What makes sglang print its VRAM analysis: ['--log-level', 'debug'] from 0.5.10, else []."""
    real = _optional("...knowledge.releases", "vram_log_argv")
    if real is not None:
        try:
            return list(real(version))
        except Exception:
            pass
    return ["--log-level", "debug"] if needs_debug_for_vram_log(version) else []


def needs_debug_for_vram_log(version: str) -> bool:
    """From 0.5.10 sglang logs its VRAM analysis (gpu_worker.do_mem_analysis) at debug level only."""
    real = _optional("...knowledge.releases", "needs_debug_for_vram_log")
    if real is not None:
        try:
            return bool(real(version))
        except Exception:
            pass
    return version_key(version) >= (0, 5, 10)


# -- command validation -------------------------------------------------------------------------------

def check_command(argv: list[str], version: str | None, gpus: list[int] | None) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) for an `sglang generate` argv. Errors stop the run before it starts."""
    real = _optional("..check_command", "check_command")
    if real is not None:
        try:
            result = real(argv=argv, sglang_version=version)
        except TypeError:
            result = None
        if result is not None:
            errors = [Problem.model_validate(p.model_dump() if hasattr(p, "model_dump") else p)
                      for p in getattr(result, "errors", []) or []]
            warnings = [Problem.model_validate(p.model_dump() if hasattr(p, "model_dump") else p)
                        for p in getattr(result, "warnings", []) or []]
            # run_generate runs on this host's GPUs, whatever they are: no hardware spec to plan against
            return errors, [w for w in warnings if w.code != "hardware_unknown"]
    known = _known_flags(version)
    if known is None:
        return [], [Problem(code="flags_not_checked",
                            message=f"The flags were not validated: no flag table for sglang {version or '?'}.",
                            fix="Check the command with check_command, or trust sglang's own argparse error.")]
    errors = []
    for flag in _flags_of(argv):
        if flag not in known:
            errors.append(Problem(code="unknown_flag", flag=flag,
                                  message=f"sglang {version} has no flag {flag}.",
                                  fix="Remove it, spell it as this release does, or set allow_unknown_flags."))
    return errors, []


def _flags_of(argv: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in argv if a.startswith("--")]


def _known_flags(version: str | None) -> set[str] | None:
    if not version:
        return None
    names = _optional("...knowledge.releases", "flag_names")
    known = _optional("...knowledge.releases", "known_versions")
    if names is not None and known is not None:
        try:
            if version in known():
                return set(names(version))
        except Exception:
            pass
    try:
        from ...knowledge import loader

        for entry in loader.load("releases"):
            if getattr(entry, "version", None) == version:
                return {f.flag for f in entry.flags}
    except Exception:
        return None
    return None


# -- GPUs ----------------------------------------------------------------------------------------------

def detect_idle_gpus() -> tuple[list[int] | None, str | None, str | None]:
    """(idle GPU indices, GPU type, hardware like '2xH100'), or Nones when no GPU is detected."""
    real = _optional("..detect_gpus", "detect_gpus")
    if real is None:
        return None, None, None
    try:
        result = real()
    except Exception:
        return None, None, None
    if not getattr(result, "gpu_count", 0):
        return None, None, None
    gpus = list(getattr(result, "gpus", []) or [])
    first = gpus[0] if gpus else None
    gpu_type = (getattr(first, "kb_gpu", None) or getattr(first, "name", None)) if first else None
    idle = [int(i) for i in getattr(result, "idle_gpus", []) or []]
    return idle, gpu_type, None


# -- perf dump ------------------------------------------------------------------------------------------

def parse_perf_dump(path: str) -> dict[str, Any]:
    """sglang's perf dump -> {total_ms, denoise_ms, stages, steps, memory_checkpoints (GiB), peak_reserved_gb}.

    Format (utils/perf_logger.py dump_benchmark_report, 0.5.6 .. 0.5.23): {timestamp, request_id,
    commit_hash, tag, total_duration_ms, steps: [{name, duration_ms}] (these are the STAGES),
    denoise_steps_ms: [{step, duration_ms}], memory_checkpoints: {name: {..._mb}}, meta}.
    """
    real = _optional("..perf_dump", "load_perf_dump")
    if real is not None:
        dump = real(path)
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
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    if not isinstance(raw, dict):
        raise ValueError("perf dump is not a JSON object")
    stages = [{"name": str(s.get("name")), "ms": float(s.get("duration_ms") or 0.0)}
              for s in raw.get("steps") or [] if isinstance(s, dict)]
    steps = [float(s.get("duration_ms") or 0.0) for s in raw.get("denoise_steps_ms") or [] if isinstance(s, dict)]
    denoise_stage_ms = [s["ms"] for s in stages if "denois" in s["name"].lower()]
    # SGLang's compare_perf: the denoising stages, else the sum of the steps
    denoise_ms = sum(denoise_stage_ms) if denoise_stage_ms else (sum(steps) if steps else None)
    checkpoints = {name: {k.replace("_mb", "_gb"): round(float(v) / 1024.0, 3) for k, v in c.items()
                          if isinstance(v, (int, float))}
                   for name, c in (raw.get("memory_checkpoints") or {}).items() if isinstance(c, dict)}
    peaks = [c.get("peak_reserved_gb") or 0.0 for c in checkpoints.values()]
    return {
        "total_ms": float(raw.get("total_duration_ms") or 0.0),
        "denoise_ms": denoise_ms,
        "stages": stages,
        "steps": {"count": len(steps), "mean_ms": statistics.fmean(steps) if steps else None,
                  "median_ms": statistics.median(steps) if steps else None},
        "memory_checkpoints": checkpoints,
        "peak_reserved_gb": max(peaks) if peaks and max(peaks) > 0 else None,
    }


# -- VRAM analysis --------------------------------------------------------------------------------------

_VRAM_OLD = re.compile(
    r"Peak GPU memory: ([0-9.]+) GB, Peak allocated: ([0-9.]+) GB, Memory pool overhead: ([0-9.]+) GB "
    r"\(([0-9.]+)%\), Remaining GPU memory at peak: (-?[0-9.]+) GB\. Components that could stay resident "
    r"\(based on the last request workload\): (\[.*?\])\. Related offload server args to disable: (.*)$")
_VRAM_NEW = re.compile(
    r"GPU memory: peak=([0-9.]+) GB, allocated=([0-9.]+) GB, pool=([0-9.]+) GB \(([0-9.]+)%\), "
    r"headroom=(-?[0-9.]+) GB\.(?: Components that can remain on GPU: (\[.*?\])\.)?")


_VRAM_KEEP = ("format", "log_level", "peak_reserved_gb", "peak_allocated_gb", "pool_overhead_gb", "pool_overhead_pct",
              "headroom_gb", "components_can_stay_resident", "flags_to_disable", "suggested_changes", "oom",
              "max_peak_mb", "summary", "warnings")


def parse_vram_log(lines: list[str], log_path: str | None = None, version: str | None = None) -> dict[str, Any] | None:
    """The VRAM analysis sglang printed: peak reserved/allocated, pool overhead, headroom, resident hints."""
    real = _optional("..vram_log", "parse_vram_log")
    if real is not None and log_path:
        try:
            data = real(log_path=log_path, sglang_version=version).model_dump(mode="json")
            return {k: data.get(k) for k in _VRAM_KEEP}
        except Exception:
            pass
    for line in reversed(lines):
        m = _VRAM_OLD.search(line)
        if m:
            return {"peak_reserved_gb": float(m[1]), "peak_allocated_gb": float(m[2]),
                    "pool_overhead_gb": float(m[3]), "pool_overhead_pct": float(m[4]),
                    "headroom_gb": float(m[5]), "components_can_stay_resident": re.findall(r"'([^']+)'", m[6]),
                    "flags_to_disable": [] if m[7].strip() == "None" else
                    [a.strip() for a in m[7].split(",") if a.strip()]}
        m = _VRAM_NEW.search(line)
        if m:
            return {"peak_reserved_gb": float(m[1]), "peak_allocated_gb": float(m[2]),
                    "pool_overhead_gb": float(m[3]), "pool_overhead_pct": float(m[4]),
                    "headroom_gb": float(m[5]),
                    "components_can_stay_resident": re.findall(r"'([^']+)'", m[6]) if m[6] else [],
                    "flags_to_disable": []}
    return None


# -- models ---------------------------------------------------------------------------------------------

# Stand-in until knowledge/data/models.yaml marks these `gated: true`.
_GATED_FALLBACK = ("black-forest-labs/flux.1-dev", "black-forest-labs/flux.1-kontext-dev",
                   "black-forest-labs/flux.2-dev", "stabilityai/stable-diffusion-3.5-large",
                   "stabilityai/stable-diffusion-3.5-medium", "stabilityai/stable-diffusion-3-medium-diffusers")


def model_is_gated(model: str) -> bool:
    wanted = model.strip().lower()
    try:
        from ...knowledge import loader

        for entry in loader.load("models"):
            ids = [i.lower() for i in getattr(entry, "hf_ids", [])]
            if wanted in ids:
                return bool(getattr(entry, "gated", False))
    except Exception:
        pass
    return wanted in _GATED_FALLBACK
