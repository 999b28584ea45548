"""Turn what a source read into the detect_gpus result: knowledge-base match, idle GPUs, links, env."""

from __future__ import annotations

from ..problems import Problem
from .matching import match_gpu
from .model import DetectGpusResult, GpuInfo, GpuLink, Source

# The idle rule SGLang's own tuning scripts use to pick GPUs.
IDLE_MAX_USED_MIB = 32
IDLE_MAX_UTIL_PCT = 5


def _enrich(gpu: GpuInfo, warnings: list[Problem]) -> None:
    entry, how = match_gpu(gpu.name, gpu.memory_total_mib)
    if gpu.memory_total_mib is not None:
        gpu.memory_total_gb = round(gpu.memory_total_mib / 1024, 2)
    if entry is None:
        warnings.append(Problem(code="unknown_gpu", message=f"GPU {gpu.index} ({gpu.name!r}) is not in the knowledge "
                                "base; its bandwidth and throughput are unknown.",
                                fix="Recommendations fall back to its memory and compute capability; add the GPU to "
                                    "knowledge/data/gpus.yaml."))
        return
    gpu.kb_gpu, gpu.kb_match = entry.id, how
    gpu.compute_capability = gpu.compute_capability or entry.compute_capability
    gpu.architecture = gpu.architecture or entry.architecture
    if not entry.supported:
        warnings.append(Problem(code="gpu_not_supported", message=f"GPU {gpu.index} ({entry.title}) is not supported "
                                "by sglang-diffusion-mcp yet."))


def _idle(gpu: GpuInfo) -> None:
    reasons = []
    if gpu.mig_enabled:
        reasons.append(f"in MIG mode ({len(gpu.mig_slices)} slices); slices are not whole GPUs")
    if gpu.processes_total:
        reasons.append(f"{gpu.processes_total} compute process(es)")
    if gpu.memory_used_mib is None:
        reasons.append("used memory unknown")
    elif gpu.memory_used_mib > IDLE_MAX_USED_MIB:
        reasons.append(f"{gpu.memory_used_mib} MiB used (> {IDLE_MAX_USED_MIB})")
    if gpu.utilization_pct is not None and gpu.utilization_pct > IDLE_MAX_UTIL_PCT:
        reasons.append(f"{gpu.utilization_pct}% utilization (> {IDLE_MAX_UTIL_PCT}%)")
    gpu.busy_reasons, gpu.idle = reasons, not reasons


def _links(gpus: list[GpuInfo], found: dict[tuple[int, int], GpuLink]) -> list[GpuLink]:
    return [found.get((a.index, b.index)) or GpuLink(a=a.index, b=b.index, kind="unknown")
            for i, a in enumerate(gpus) for b in gpus[i + 1:]]


def _env(result: DetectGpusResult, existing_cvd: str | None) -> None:
    if not result.gpus:
        return
    env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}  # CUDA's default order is fastest-first, NVML's is PCI bus order
    if existing_cvd is not None:
        result.cuda_visible_devices = existing_cvd
        result.warnings.append(Problem(code="cuda_visible_devices_set", message=f"CUDA_VISIBLE_DEVICES is already "
                                       f"set to {existing_cvd!r}; it is left alone. GPU indices here are physical "
                                       "(NVML ignores CUDA_VISIBLE_DEVICES).", flag="CUDA_VISIBLE_DEVICES",
                                       fix="Unset it to use the recommended idle GPUs, or keep it on purpose."))
    elif result.idle_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in result.idle_gpus)
    elif result.gpus and all(g.mig_enabled for g in result.gpus):
        result.warnings.append(Problem(code="no_idle_gpu", message="No whole GPU is available: every GPU is in MIG "
                                       "mode, and MIG slices are never pooled for sglang generate.",
                                       fix="Disable MIG on a GPU (nvidia-smi -i N -mig 0), or run on another host."))
    else:
        result.warnings.append(Problem(code="no_idle_gpu", message="No GPU is idle (each has a compute process, "
                                       f"more than {IDLE_MAX_USED_MIB} MiB used or more than {IDLE_MAX_UTIL_PCT}% "
                                       "utilization); see busy_reasons.",
                                       fix="Wait for the running jobs, or pick GPUs yourself with CUDA_VISIBLE_DEVICES."))
    result.recommended_env = env


def build_result(source: Source, gpus: list[GpuInfo], links: dict[tuple[int, int], GpuLink],
                 driver_version: str | None, cuda_driver_version: str | None, warnings: list[Problem],
                 existing_cvd: str | None) -> DetectGpusResult:
    warnings = list(warnings)
    for gpu in gpus:
        _enrich(gpu, warnings)
        _idle(gpu)
    whole = [g for g in gpus if not g.mig_enabled]
    mig = [g for g in gpus if g.mig_enabled]
    if mig:
        warnings.append(Problem(code="mig_enabled", message=f"GPU(s) {', '.join(str(g.index) for g in mig)} are in "
                                "MIG mode; their slices are listed but not counted as whole GPUs.",
                                fix="Disable MIG (nvidia-smi -mig 0) to use them for sglang generate."))
    result = DetectGpusResult(source=source, driver_version=driver_version, cuda_driver_version=cuda_driver_version,
                              gpu_count=len(whole), mig_slice_count=sum(len(g.mig_slices) for g in mig), gpus=gpus,
                              links=_links(gpus, links), idle_gpus=[g.index for g in gpus if g.idle],
                              warnings=warnings)
    result.all_nvlink = bool(result.links) and all(link.kind == "nvlink" for link in result.links)
    _env(result, existing_cvd)
    return result
