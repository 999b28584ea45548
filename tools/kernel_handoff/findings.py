"""Findings: where the time goes, per stage (perf dump) and, within the profiled denoising, by kind of work."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..perf_dump import PerfDump
from .classify import KINDS
from .trace_summary import KernelStats, TraceSummary

MAX_TOP_KERNELS = 12
MAX_FAMILIES = 15
MAX_NAME = 240
MAX_DIMS_CHARS = 400


class StageShare(BaseModel):
    name: str
    duration_ms: float
    share_pct: float = Field(description="Share of the dump's total_duration_ms.")
    is_denoising: bool = False


class KindShare(BaseModel):
    kind: str = Field(description="attention, gemm, norm_elementwise, communication, host_device_copy, idle, other.")
    time_ms: float = Field(description="Summed kernel time of this kind (idle: time no kernel ran), all devices.")
    share_pct: float = Field(description="Percent of the GPU window (first kernel start to last kernel end, per "
                                         "device). Kinds on different streams can overlap, so shares may sum "
                                         "above 100.")
    kernels: int = Field(default=0, description="Distinct kernel names of this kind.")
    top_family: str | None = Field(default=None, description="The family with the most time, e.g. fa3, sdpa_flash.")


class FamilyShare(BaseModel):
    kind: str
    family: str = Field(description="e.g. fa3, sdpa_flash, cublas, nvjet, rmsnorm, all_to_all, memcpy_htod.")
    time_ms: float
    share_pct: float = Field(description="Percent of the GPU window.")


class KernelFinding(BaseModel):
    name: str = Field(description="Kernel name as the trace records it (cut at 240 characters).")
    kind: str
    family: str
    sglang_kernel: bool = Field(description="One of sglang's own JIT/Triton kernels (tuning work, not a new kernel).")
    total_ms: float
    share_pct: float = Field(description="Percent of the GPU window.")
    count: int
    mean_us: float
    max_us: float
    op: str | None = Field(default=None, description="The CPU op that launched it (by External id), e.g. aten::mm.")
    input_dims: Any = Field(default=None, description="That op's `Input Dims` as recorded (record_shapes).")
    input_types: Any = Field(default=None, description="That op's `Input type` (dtypes) as recorded.")


class TraceFindings(BaseModel):
    path: str
    events: int = Field(description="Trace events read.")
    gpu_events: int = Field(description="Kernels, memcpys and memsets read.")
    devices: int
    profiler_steps: int = Field(description="ProfilerStep# annotations: profiled steps (or stages with "
                                            "--profile-all-stages).")
    window_ms: float = Field(description="GPU window summed over devices, ms.")
    busy_ms: float
    kinds: list[KindShare] = Field(description="Every kind, largest first.")
    families: list[FamilyShare] = Field(default_factory=list, description="Kernel families, largest first (capped).")
    top_kernels: list[KernelFinding]
    top_kernels_total: int = Field(description="Distinct kernel names in the trace.")
    top_kernels_truncated: bool
    gpu_name: str | None = Field(default=None, description="From the trace's deviceProperties.")
    compute_capability: str | None = Field(default=None, description="From the trace's deviceProperties.")
    world_size: int | None = Field(default=None, description="From the trace's distributedInfo.")
    scope: str = Field(default="", description="What part of the run the trace covers.")


class Findings(BaseModel):
    total_ms: float | None = Field(default=None, description="From the perf dump the stages come from.")
    denoise_ms: float | None = None
    steps: int | None = None
    mean_step_ms: float | None = None
    stages: list[StageShare] = Field(default_factory=list)
    trace: TraceFindings | None = None
    dominant_kind: str | None = Field(default=None, description="The kind with the largest share (idle included).")
    hotspot: KernelFinding | None = Field(default=None, description="The kernel with the most time.")


def _cap(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= MAX_DIMS_CHARS else text[:MAX_DIMS_CHARS] + "..."


def kernel_finding(summary: TraceSummary, stats: KernelStats, window_us: float) -> KernelFinding:
    op, dims, types = summary.shapes_of(stats)
    return KernelFinding(
        name=stats.name[:MAX_NAME], kind=stats.kind, family=stats.family, sglang_kernel=stats.sglang_kernel,
        total_ms=round(stats.total_us / 1000, 3), share_pct=round(100 * stats.total_us / window_us, 2) if window_us else 0.0,
        count=stats.count, mean_us=round(stats.total_us / stats.count, 2) if stats.count else 0.0,
        max_us=round(stats.max_us, 2), op=op, input_dims=_cap(dims), input_types=_cap(types))


def _device_facts(header: dict) -> tuple[str | None, str | None, int | None]:
    name = cc = None
    props = header.get("deviceProperties")
    if isinstance(props, list) and props and isinstance(props[0], dict):
        first = props[0]
        name = first.get("name") if isinstance(first.get("name"), str) else None
        major, minor = first.get("computeMajor"), first.get("computeMinor")
        if isinstance(major, int) and isinstance(minor, int):
            cc = f"{major}.{minor}"
    dist = header.get("distributedInfo")
    world = dist.get("world_size") if isinstance(dist, dict) else None
    return name, cc, world if isinstance(world, int) else None


def trace_findings(summary: TraceSummary) -> TraceFindings:
    window = summary.window_us
    families: dict[str, dict[str, float]] = {k: {} for k in KINDS}
    counts = dict.fromkeys(KINDS, 0)
    for stats in summary.kernels.values():
        families[stats.kind][stats.family] = families[stats.kind].get(stats.family, 0.0) + stats.total_us
        counts[stats.kind] += 1
    kinds = []
    for kind in KINDS:
        us = summary.kind_us.get(kind, 0.0)
        fam = max(families[kind].items(), key=lambda kv: kv[1])[0] if families[kind] else None
        kinds.append(KindShare(kind=kind, time_ms=round(us / 1000, 3),
                               share_pct=round(100 * us / window, 2) if window else 0.0,
                               kernels=counts[kind], top_family=fam))
    kinds.sort(key=lambda k: -k.time_ms)
    fam_rows = sorted(((kind, fam, us) for kind, fams in families.items() for fam, us in fams.items()),
                      key=lambda row: -row[2])[:MAX_FAMILIES]
    fam_shares = [FamilyShare(kind=kind, family=fam, time_ms=round(us / 1000, 3),
                              share_pct=round(100 * us / window, 2) if window else 0.0) for kind, fam, us in fam_rows]
    ranked = sorted(summary.kernels.values(), key=lambda s: -s.total_us)
    top = [kernel_finding(summary, s, window) for s in ranked[:MAX_TOP_KERNELS]]
    name, cc, world = _device_facts(summary.header)
    scope = ("denoising steps only (sglang's --profile default)" if summary.profiler_steps else "the whole trace")
    return TraceFindings(
        path=summary.path, events=summary.events, gpu_events=summary.gpu_events, devices=len(summary.devices),
        profiler_steps=summary.profiler_steps, window_ms=round(window / 1000, 3),
        busy_ms=round(summary.busy_us / 1000, 3), kinds=kinds, families=fam_shares, top_kernels=top,
        top_kernels_total=len(ranked), top_kernels_truncated=len(ranked) > MAX_TOP_KERNELS,
        gpu_name=name, compute_capability=cc, world_size=world, scope=scope)


def stage_shares(dump: PerfDump) -> list[StageShare]:
    total = dump.total_ms or sum(s.duration_ms for s in dump.stages) or 0.0
    merged: dict[str, StageShare] = {}
    for s in dump.stages:
        key = "denoising_steps" if s.name.startswith("denoising_step_") else s.name
        if key in merged:
            merged[key].duration_ms += s.duration_ms
        else:
            merged[key] = StageShare(name=key, duration_ms=s.duration_ms, share_pct=0.0,
                                     is_denoising=s.is_denoising or key == "denoising_steps")
    out = sorted(merged.values(), key=lambda s: -s.duration_ms)[:20]
    for s in out:
        s.duration_ms = round(s.duration_ms, 3)
        s.share_pct = round(100 * s.duration_ms / total, 2) if total else 0.0
    return out


def build_findings(dump: PerfDump | None, summary: TraceSummary | None) -> Findings:
    findings = Findings()
    if dump is not None:
        findings.total_ms, findings.denoise_ms = dump.total_ms, dump.denoise_ms
        findings.stages = stage_shares(dump)
        if dump.steps:
            findings.steps, findings.mean_step_ms = dump.steps.count, round(dump.steps.mean_ms, 3)
    if summary is not None:
        tf = trace_findings(summary)
        findings.trace = tf
        if tf.kinds and tf.kinds[0].time_ms > 0:
            findings.dominant_kind = tf.kinds[0].kind
        findings.hotspot = tf.top_kernels[0] if tf.top_kernels else None
    return findings
