"""detect_gpus: the GPUs of this host (live NVML, else nvidia-smi) or of a captured snapshot."""

from __future__ import annotations

import os
import time
from pathlib import Path

from .gpus import amd_source, nvml_source, smi_source
from .gpus.analysis import build_result
from .gpus.model import DetectGpusResult
from .gpus.smi_source import QUERY_FILE, TOPO_FILE, SmiParseError
from .problems import Problem, ToolInputError

NVML_TIMEOUT_S = 10.0  # whole NVML probe; a hung driver gives a warning, never a hung server
SMI_TIMEOUT_S = 15.0  # each nvidia-smi / amd-smi command
CAPTURE_HOWTO = (f"On the GPU host run `nvidia-smi -q -x > {QUERY_FILE}` and `nvidia-smi topo -m > {TOPO_FILE}`, "
                 "copy both into one folder and pass that folder as snapshot_dir.")


def _snapshot(snapshot_dir: str) -> DetectGpusResult:
    folder = Path(snapshot_dir).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ToolInputError("snapshot_not_found", f"snapshot_dir {snapshot_dir!r} {what}.", CAPTURE_HOWTO,
                             flag="snapshot_dir")
    if not (folder / QUERY_FILE).is_file():
        raise ToolInputError("snapshot_incomplete", f"{snapshot_dir!r} has no {QUERY_FILE} (required; {TOPO_FILE} "
                             "is optional).", CAPTURE_HOWTO, flag="snapshot_dir")
    try:
        host = smi_source.read_snapshot(folder)
    except (SmiParseError, OSError) as exc:
        raise ToolInputError("bad_snapshot", f"{folder / QUERY_FILE} is not readable `nvidia-smi -q -x` output: "
                             f"{exc}.", CAPTURE_HOWTO, flag="snapshot_dir") from exc
    result = build_result("snapshot", host.gpus, host.links, host.driver_version, host.cuda_driver_version,
                          host.warnings, existing_cvd=None)
    result.snapshot_dir = str(folder)
    return result


def _live() -> DetectGpusResult:
    existing_cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    host, warnings = nvml_source.read(NVML_TIMEOUT_S)
    if host is not None:
        result = build_result("nvml", host.gpus, host.links, host.driver_version, host.cuda_driver_version,
                              warnings + host.warnings, existing_cvd)
    else:
        smi, smi_warnings = smi_source.read_live(SMI_TIMEOUT_S)
        warnings += smi_warnings
        if smi is not None:
            result = build_result("nvidia-smi", smi.gpus, smi.links, smi.driver_version, smi.cuda_driver_version,
                                  warnings + smi.warnings, existing_cvd)
        else:
            warnings.append(Problem(code="no_nvidia_gpu", message="No NVIDIA GPU could be read here (neither NVML nor "
                                    "nvidia-smi answered); see the other warnings for why.",
                                    fix="Planning without GPUs is fine: pass a hardware spec such as 1xH100 or 4xH200 "
                                        "to the tools, or replay a capture with snapshot_dir."))
            result = DetectGpusResult(source="none", warnings=warnings)
    result.amd_gpus_seen, amd_warnings = amd_source.amd_gpus(SMI_TIMEOUT_S)
    result.warnings += amd_warnings
    return result


def detect_gpus(snapshot_dir: str | None = None) -> DetectGpusResult:
    """Detect the NVIDIA GPUs of this host: model, memory (used/free as nvidia-smi shows them), compute
    capability, running processes, which GPUs are idle, and the NVLink/PCIe link between every pair.
    Call it first on a GPU host; its idle GPUs and recommended_env (CUDA_VISIBLE_DEVICES,
    CUDA_DEVICE_ORDER) feed the other tools, and each GPU's kb_gpu names its knowledge-base entry.

    Reads live NVML, falling back to `nvidia-smi`. With `snapshot_dir`, replays `nvidia-smi-q.xml`
    (required) and `nvidia-smi-topo.txt` (optional) captured on another host. No GPU is a normal
    answer (source "none" with a warning that says why), not an error: plan with a hardware spec instead.
    """
    started = time.perf_counter()
    result = _snapshot(snapshot_dir) if snapshot_dir else _live()
    result.elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    return result
