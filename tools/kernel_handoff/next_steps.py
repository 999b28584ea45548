"""Ordered next steps: flags first, then known fast paths that already cover the hotspot, then new kernel work.

Thresholds are shares of the GPU window of the profiled steps. They are deliberately coarse: a step is a
suggestion to measure (run_generate + compare_perf), never a claim.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ...knowledge import loader
from ...knowledge.schema import KernelSkill
from ...knowledge.schema.fast_path import FastPath
from ...knowledge.schema.option import cc_allows
from .classify import FA_FAMILIES, SDPA_FAMILIES, classify_kernel
from .context import HandoffContext, option, spell
from .findings import Findings, KernelFinding, KindShare

COPY_DOMINANT_PCT = 15.0
COMM_DOMINANT_PCT = 20.0
SDPA_MIN_PCT = 10.0
IDLE_DOMINANT_PCT = 15.0
GEMM_DOMINANT_PCT = 40.0
FAST_PATH_MIN_PCT = 5.0
MAX_FAST_PATHS = 5
COMPUTE_KINDS = ("attention", "gemm", "norm_elementwise", "other")
VENDOR_FAMILIES = FA_FAMILIES | SDPA_FAMILIES | {"cublas", "nvjet", "cutlass", "fp8_gemm", "fp4_gemm"}

# Which fast-path `covers` tags can explain time in a kernel family (fast_paths.yaml vocabulary).
FAMILY_COVERS: dict[str, tuple[str, ...]] = {
    "all_to_all": ("all_to_all", "all_to_all_overlap", "comm_compute_overlap", "sequence_parallel_padding"),
    "all_reduce": ("comm_compute_overlap",), "all_gather": ("comm_compute_overlap",),
    "reduce_scatter": ("comm_compute_overlap",),
    "rmsnorm": ("rmsnorm", "residual_add_norm"), "layernorm": ("layernorm", "layernorm_modulation",
                                                                         "residual_gate_norm"),
    "qk_norm": ("qk_norm", "qk_norm_rope"), "rope": ("rope", "qk_norm_rope"),
    "adaln_modulation": ("adaln_modulation", "scale_shift", "gate", "norm_tanh_gate"),
    "groupnorm": ("vae_groupnorm_silu",), "inductor_fused": ("rmsnorm", "layernorm", "adaln_modulation"),
    "elementwise": ("adaln_modulation", "scale_shift", "gate"), "activation": ("mlp_gelu",),
    "fp4_gemm": ("nvfp4_gemm", "svdquant_gemm", "qkv_projection"), "cublas": ("qkv_projection", "mlp_gelu"),
    "nvjet": ("qkv_projection", "mlp_gelu"), "cutlass": ("qkv_projection",),
}
# Tags only multi-GPU runs can have time in.
DISTRIBUTED_TAGS = frozenset({"all_to_all", "all_to_all_overlap", "comm_compute_overlap", "ring_attention",
                              "sequence_parallel_attention", "sequence_parallel_padding"})
LOW_VALUE_PCT = 10.0
KIND_COVERS: dict[str, tuple[str, ...]] = {
    "attention": ("attention", "sequence_parallel_attention", "ring_attention"),
    "communication": ("all_to_all", "comm_compute_overlap"),
    "idle": ("launch_overhead", "cuda_graph", "stream_overlap"),
    "norm_elementwise": ("rmsnorm", "layernorm", "adaln_modulation"),
}


class NextStep(BaseModel):
    order: int
    category: Literal["measure", "flag", "fast_path", "kernel_work"]
    title: str
    why: str
    add_flags: list[str] = Field(default_factory=list, description="argv pieces to add (or change to).")
    remove_flags: list[str] = Field(default_factory=list, description="Flags to drop from the command.")
    option_ids: list[str] = Field(default_factory=list, description="Knowledge `options` entries behind it.")
    fast_path_id: str | None = Field(default=None, description="Knowledge `fast_paths` entry, for fast-path steps.")
    target_skill: str | None = Field(default=None, description="For kernel work: the sglang skill to hand it to.")
    lossy: bool = False
    addresses: str | None = Field(default=None, description="The kind of work it addresses.")
    share_pct: float | None = Field(default=None, description="That kind's share of the GPU window.")


def _share(findings: Findings, kind: str) -> float:
    if not findings.trace:
        return 0.0
    return next((k.share_pct for k in findings.trace.kinds if k.kind == kind), 0.0)


def _family_share(findings: Findings, families: frozenset[str] | set[str]) -> float:
    if not findings.trace:
        return 0.0
    return sum(fam.share_pct for fam in findings.trace.families if fam.family in families)


def _families(findings: Findings, kind: str) -> list[str]:
    if not findings.trace:
        return []
    return [fam.family for fam in findings.trace.families if fam.kind == kind]


def _step(steps: list[NextStep], **kw) -> None:
    steps.append(NextStep(order=len(steps) + 1, **kw))


def _copy_steps(steps: list[NextStep], f: Findings, ctx: HandoffContext) -> None:
    share = _share(f, "host_device_copy")
    if share < COPY_DOMINANT_PCT:
        return
    layerwise = ctx.switch("--dit-layerwise-offload")
    cpu_offload = ctx.switch("--dit-cpu-offload")
    why = f"Host-to-device copies take {share:.0f} % of the GPU window"
    if layerwise is not False:
        known = "is on in the command" if layerwise else ("is not set; sglang turns it on by default for some "
                                                          "pipelines and performance modes")
        off = spell("dit_layerwise_offload", ctx.version, "false")
        if off:
            _step(steps, category="flag", title="Turn DiT layerwise offload off (if VRAM allows)",
                  why=f"{why}, and layerwise offload {known}: each step streams the DiT weights again.",
                  add_flags=off, option_ids=["dit_layerwise_offload"], addresses="host_device_copy", share_pct=share)
        prefetch = spell("dit_offload_prefetch_size", ctx.version, "0.1")
        if prefetch:
            _step(steps, category="flag", title="Or keep the offload and raise the prefetch",
                  why="Fetching more layers ahead batches the copies and overlaps them with compute; sweep "
                      "0.05-0.1 first (values in [0.5, 1) are discouraged by sglang).",
                  add_flags=prefetch, option_ids=["dit_offload_prefetch_size"], addresses="host_device_copy",
                  share_pct=share)
    if cpu_offload is not False and (cpu_offload or layerwise is False):
        off = spell("dit_cpu_offload", ctx.version, "false")
        if off:
            _step(steps, category="flag", title="Turn DiT CPU offload off (if VRAM allows)",
                  why=f"{why}; with --dit-cpu-offload the whole DiT moves to the GPU for every use.",
                  add_flags=off, option_ids=["dit_cpu_offload"], addresses="host_device_copy", share_pct=share)


def _comm_steps(steps: list[NextStep], f: Findings, ctx: HandoffContext) -> None:
    share = _share(f, "communication")
    if share < COMM_DOMINANT_PCT:
        return
    fams = ", ".join(_families(f, "communication")[:3]) or "collectives"
    gpus = ctx.gpu_count or (f.trace.world_size if f.trace else None)
    fewer = f"--num-gpus {max(1, gpus // 2)}" if gpus and gpus > 1 else "a smaller --num-gpus"
    _step(steps, category="flag", title="Use fewer GPUs per request",
          why=f"Communication ({fams}) takes {share:.0f} % of the GPU window: each GPU has too little compute to "
              f"hide it. Try {fewer} (with matching --ulysses-degree/--ring-degree) and compare per-request time.",
          add_flags=["--num-gpus", str(max(1, gpus // 2))] if gpus and gpus > 1 else [],
          option_ids=["num_gpus", "sequence_parallel"], addresses="communication", share_pct=share)
    cfg_on = ctx.switch("--enable-cfg-parallel") or (ctx.number("--cfg-parallel-size") or 1) > 1
    if not cfg_on and ctx.model_uses_cfg is not False:
        spelled = spell("cfg_parallel", ctx.version)
        if spelled:
            cond = "" if ctx.model_uses_cfg else " (only if the request runs CFG, i.e. a negative branch)"
            _step(steps, category="flag", title="Use CFG parallel instead of wider sequence parallelism",
                  why="CFG parallel splits the conditional and unconditional branches over GPU groups with one "
                      f"exchange per step, instead of all-to-all inside every attention layer{cond}.",
                  add_flags=spelled, option_ids=["cfg_parallel"], addresses="communication", share_pct=share)


def _hotspot_is(f: Findings, kind: str) -> bool:
    """Compute-kind steps (attention backend, GEMM precision) only for the kind of the top compute kernel."""
    hot = kernel_hotspot(f)
    return hot is not None and hot.kind == kind


def _attention_steps(steps: list[NextStep], f: Findings, ctx: HandoffContext) -> None:
    share = _family_share(f, SDPA_FAMILIES)
    if share < SDPA_MIN_PCT or not _hotspot_is(f, "attention"):
        return
    fa = option("attn_fa")
    clauses = fa.requires.compute_capability if fa else [">=8.0", "!=12.*"]
    cc = ctx.compute_capability
    if cc and not cc_allows(clauses, cc):
        return  # FA is not available here (SM12x, pre-Ampere): SDPA is what sglang would pick anyway
    cond = "" if cc else " if the GPU is SM80-SM10x (compute capability unknown here)"
    remove = ["--attention-backend"] if ctx.flags.get("--attention-backend") in ("torch_sdpa", "sdpa") else []
    _step(steps, category="flag", title="Switch attention to FlashAttention",
          why=f"PyTorch SDPA kernels take {share:.0f} % of the GPU window; FlashAttention (FA3 on Hopper) is "
              f"available{' on compute capability ' + cc if cc else ''}{cond} and is sglang's default there.",
          add_flags=spell("attn_fa", ctx.version, "fa") or ["--attention-backend", "fa"], remove_flags=remove,
          option_ids=["attention_backend", "attn_fa"], addresses="attention", share_pct=share)


def _idle_steps(steps: list[NextStep], f: Findings, ctx: HandoffContext) -> None:
    share = _share(f, "idle")
    if share < IDLE_DOMINANT_PCT or ctx.switch("--enable-torch-compile"):
        return
    _step(steps, category="flag", title="Turn on torch.compile",
          why=f"The GPU sits idle {share:.0f} % of the profiled window (launch gaps between small kernels); "
              "compiling the DiT fuses kernels and cuts launches. Keep warmup on so compilation is not timed.",
          add_flags=spell("torch_compile", ctx.version, "true") or ["--enable-torch-compile"],
          option_ids=["torch_compile"], addresses="idle", share_pct=share)


def _gemm_steps(steps: list[NextStep], f: Findings, ctx: HandoffContext) -> None:
    share = _share(f, "gemm")
    cc = ctx.compute_capability
    # FP8 weights speed up GEMMs only: not for a run whose top kernel is attention, however many GEMMs it has
    if share < GEMM_DOMINANT_PCT or not cc or not _hotspot_is(f, "gemm"):
        return
    if _families(f, "gemm")[:1] in (["fp8_gemm"], ["fp4_gemm"]):
        return
    opt = option("weights_fp8")
    if opt and cc_allows(opt.requires.compute_capability, cc) and spell("weights_fp8", ctx.version):
        _step(steps, category="flag", title="Lossy: FP8 transformer weights",
              why=f"GEMMs take {share:.0f} % of the GPU window and this GPU has FP8 tensor cores; a validated FP8 "
                  "checkpoint roughly halves GEMM time. Lossy: check image/video quality.",
              add_flags=spell("weights_fp8", ctx.version) or [], option_ids=["weights_fp8"], lossy=True,
              addresses="gemm", share_pct=share)


def _fast_path_applies(fp: FastPath, ctx: HandoffContext) -> bool:
    if fp.stale:
        return False
    if ctx.version and not fp.releases.contains(ctx.version):
        return False
    return not (fp.model_families and ctx.model_family and ctx.model_family not in fp.model_families)


def _hotspot_tags(f: Findings) -> tuple[set[str], set[str]]:
    """Fast-path tags for the top compute kernel: from the op that launched it, and from its kernel family."""
    hot = kernel_hotspot(f)
    if hot is None:
        return set(), set()
    op_tags = set(FAMILY_COVERS.get(classify_kernel(hot.op.split("::")[-1]).family, ())) if hot.op else set()
    return op_tags, set(FAMILY_COVERS.get(hot.family, ()))


def _fast_path_steps(steps: list[NextStep], f: Findings, ctx: HandoffContext) -> None:
    if not f.trace:
        return
    single_gpu = (ctx.gpu_count or f.trace.world_size or 0) == 1
    op_tags, family_tags = _hotspot_tags(f)
    candidates: list[tuple[int, int, FastPath, KindShare]] = []
    for rank, kind in enumerate(f.trace.kinds):
        if kind.kind == "host_device_copy" or kind.share_pct < FAST_PATH_MIN_PCT:
            continue
        tags = set(KIND_COVERS.get(kind.kind, ()))
        for fam in _families(f, kind.kind):
            tags |= set(FAMILY_COVERS.get(fam, ()))
        if single_gpu:
            tags -= DISTRIBUTED_TAGS
        for fp in loader.load("fast_paths"):
            if isinstance(fp, FastPath) and tags & set(fp.covers) and _fast_path_applies(fp, ctx):
                covers = set(fp.covers)
                priority = 0 if op_tags & covers else 1 if family_tags & covers else 2
                candidates.append((priority, rank, fp, kind))
    seen: set[str] = set()
    for _, _, fp, kind in sorted(candidates, key=lambda c: (c[0], c[1])):
        if fp.id in seen or len(seen) >= MAX_FAST_PATHS:
            continue
        seen.add(fp.id)
        family = "" if ctx.model_family else (" (model family unknown: check it applies)" if fp.model_families
                                              else "")
        _step(steps, category="fast_path", title=f"Check the existing fast path: {fp.title}",
              why=f"{kind.kind} takes {kind.share_pct:.0f} % of the GPU window and sglang already has "
                  f"{fp.summary[0].lower() + fp.summary[1:]} Make sure it engaged ({fp.how_to_enable}) before "
                  f"writing a kernel{family}. Code: {fp.where}.",
              fast_path_id=fp.id, addresses=kind.kind, share_pct=kind.share_pct)


def kernel_hotspot(f: Findings) -> KernelFinding | None:
    """The top kernel of compute work: copies, collectives and idle time are not kernel-authoring targets."""
    if not f.trace:
        return None
    return next((k for k in f.trace.top_kernels if k.kind in COMPUTE_KINDS), None)


def choose_skill(hotspot: KernelFinding | None, version: str | None) -> tuple[KernelSkill | None, str | None]:
    """The kernel skill for the hotspot, preferring one the target release ships; a note when none ships."""
    if hotspot is None:
        return None, None
    if hotspot.sglang_kernel:
        wanted = ["sglang-diffusion-ako4all-kernel"]
    elif hotspot.kind == "norm_elementwise":
        wanted = ["sglang-diffusion-triton-kernel", "sglang-diffusion-ako4all-kernel"]
    else:
        wanted = ["sglang-diffusion-cuda-kernel", "sglang-diffusion-ako4all-kernel"]
    skills = [s for s in (loader.get("kernel_skills", w) for w in wanted) if isinstance(s, KernelSkill)]
    if version:
        for skill in skills:
            if skill.releases.contains(version):
                return skill, None
    skill = skills[0] if skills else None
    if skill is None:
        return None, None
    last = skill.locations[-1]
    note = (f"sglang {version or '(version unknown)'} does not ship {skill.skill}; read it from sglang "
            f"{last.releases.until or last.releases.since} at {last.path} (wheel or repository tag).")
    return skill, note


def _kernel_step(steps: list[NextStep], f: Findings, ctx: HandoffContext) -> KernelSkill | None:
    hotspot = kernel_hotspot(f)
    skill, _ = choose_skill(hotspot, ctx.version)
    if hotspot is None:
        return None
    vendor = hotspot.family in VENDOR_FAMILIES
    what = ("tune it" if hotspot.sglang_kernel else
            "it is a vendor library kernel, so look at fusing its neighbours or its precision rather than "
            "rewriting it" if vendor else "write or fuse a kernel for it")
    shapes = f" on {hotspot.input_dims} ({hotspot.input_types})" if hotspot.input_dims else ""
    if hotspot.share_pct < LOW_VALUE_PCT:
        what += "; at this share a kernel can gain little end to end, so fix the larger items above first"
    _step(steps, category="kernel_work", title=f"Hand off kernel work on {hotspot.family} ({hotspot.kind})",
          why=f"Only if the steps above do not remove it: {hotspot.name[:80]} takes {hotspot.share_pct:.0f} % of "
              f"the GPU window{shapes}; {what}. The brief carries the evidence.",
          target_skill=skill.skill if skill else None, addresses=hotspot.kind, share_pct=hotspot.share_pct)
    return skill


def plan_next_steps(f: Findings, ctx: HandoffContext) -> tuple[list[NextStep], KernelSkill | None]:
    steps: list[NextStep] = []
    if not f.trace:
        _step(steps, category="measure", title="Profile the run",
              why="Without a torch profiler trace the time cannot be split by kind of work. Rerun with "
                  "run_generate profile=true (sglang --profile) and pass the trace.",
              add_flags=["--profile"])
        return steps, None
    for rule in (_copy_steps, _comm_steps, _attention_steps, _idle_steps, _gemm_steps):
        rule(steps, f, ctx)
    _fast_path_steps(steps, f, ctx)
    skill = _kernel_step(steps, f, ctx)
    return _ordered(steps), skill


CATEGORY_ORDER = {"measure": 0, "flag": 1, "fast_path": 2, "kernel_work": 3}


def _ordered(steps: list[NextStep]) -> list[NextStep]:
    """By category (flags, fast paths, kernel work), lossless before lossy within each; renumbered."""
    ranked = sorted(steps, key=lambda s: (CATEGORY_ORDER[s.category], s.lossy))
    return [s.model_copy(update={"order": i + 1}) for i, s in enumerate(ranked)]
