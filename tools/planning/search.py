"""Plan search: enumerate valid layouts and residencies, estimate and rank them, explain the choice."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Literal

from ...knowledge.schema.option import cc_allows
from .context import PlanContext
from .cost import CostBreakdown, plan_cost
from .estimate import VramEstimate, estimate_vram
from .plan import Plan
from .render import aux_layerwise_flag, model_groups
from .rules import check_rules, plan_facts

Objective = Literal["speed", "memory", "balanced"]
BALANCED_HEADROOM = 0.10
IMAGE_PREFETCH = 0.1  # the seed's 0.05-0.1 starting range for image models
LOSSY_ATTENTION = "sage_attn"
LOSSY_VARIANTS = 20  # lossy attention is tried on this many of the fastest fitting lossless plans


@dataclass
class Scored:
    plan: Plan
    estimate: VramEstimate
    cost: CostBreakdown
    problems: list  # (severity, Problem) from the rules


def gpu_counts(total: int) -> list[int]:
    counts = {n for n in (1, 2, 4, 8, 16, 32) if n <= total and total % n == 0}
    return sorted(counts | {total})


def sp_layouts(ctx: PlanContext, sp: int) -> list[tuple[int, int]]:
    """(ulysses, ring) with ulysses x ring = sp; pure Ulysses first when it divides every head count."""
    heads = [ctx.model.attention_heads, *ctx.model.extra_attention_heads]
    out = []
    for ulysses in sorted((u for u in range(1, sp + 1) if sp % u == 0), reverse=True):
        if all(h % ulysses == 0 for h in heads):
            out.append((ulysses, sp // ulysses))
            if ulysses == sp:
                break
    return out[:2]


def attention_backend(ctx: PlanContext, lossy: bool) -> str:
    cc = ctx.hardware.compute_capability
    if not cc:
        return ""
    if lossy and cc_allows([">=8.0"], cc):
        return LOSSY_ATTENTION
    return "fa" if cc_allows([">=8.0", "!=12.*"], cc) else "torch_sdpa"


def residency_options(ctx: PlanContext) -> list[dict[str, str]]:
    groups = model_groups(ctx)
    # Encoders and VAEs can stream layer by layer only where a flag can say so (0.5.13+).
    aux = ["resident", "cpu_offload"] + (["layerwise"] if aux_layerwise_flag(ctx.version) else [])
    # small components (VAE, image encoder) gain little from streaming: resident or whole-component offload
    choices = {"dit": ["resident", "layerwise", "cpu_offload"], "text_encoder": aux,
               "image_encoder": ["resident", "cpu_offload"], "vae": ["resident", "cpu_offload"]}
    return [dict(zip(groups, combo)) for combo in product(*(choices[g] for g in groups))]


def precision_options(ctx: PlanContext) -> list[str]:
    """'' (the model's bf16), or fp16 where the GPU has no bf16 (lossy, so only with allow_lossy)."""
    cc = ctx.hardware.compute_capability
    if cc and not cc_allows([">=8.0"], cc):
        return ["fp16"] if ctx.allow_lossy else []
    return [""]


def weight_format(ctx: PlanContext) -> str:
    """Pre-quantized checkpoints name their format (…-NVFP4, …-fp8); everything else loads bf16."""
    ref = ctx.model_ref.lower()
    return next((fmt for key, fmt in (("nvfp4", "nvfp4"), ("fp8", "fp8")) if key in ref), "bf16")


def candidate_plans(ctx: PlanContext) -> list[Plan]:
    plans = []
    precisions = precision_options(ctx)
    weights = weight_format(ctx)
    uses_cfg = ctx.workload.uses_cfg and ctx.model.cfg_parallel_ok
    prefetch = IMAGE_PREFETCH if ctx.model.modality == "image" else 0.0
    for n in gpu_counts(ctx.hardware.count):
        for cfg in ([False, True] if uses_cfg and n >= 2 and n % 2 == 0 else [False]):
            sp = n // (2 if cfg else 1)
            for ulysses, ring in sp_layouts(ctx, sp):
                for residency in residency_options(ctx):
                    for fsdp in ([False, True] if n >= 2 and residency.get("dit") == "resident" else [False]):
                        for precision in precisions:
                            backend = attention_backend(ctx, False)
                            if ring > 1 and backend not in ("fa", "sage_attn"):
                                continue
                            plans.append(Plan(
                                num_gpus=n, cfg_parallel=cfg, ulysses=ulysses, ring=ring, fsdp=fsdp,
                                residency=residency, prefetch=prefetch if residency.get("dit") == "layerwise" else 0.0,
                                compile=True, warmup=True, attention_backend=backend, dit_precision=precision,
                                weight_format=weights, lossy=["dit_precision"] if precision else []))
    return plans


def score(ctx: PlanContext, plan: Plan, resident_fits: bool | None = None) -> Scored:
    estimate = estimate_vram(ctx.model, ctx.workload, plan, ctx.budget_gb)
    cost = plan_cost(ctx.model, ctx.workload, plan, estimate, ctx.hardware.bf16_tflops or 100.0,
                     ctx.hardware.interconnect)
    problems = []
    if resident_fits is not None:
        problems = check_rules(plan_facts(ctx, plan, resident_plan_fits=resident_fits), ctx.version,
                               severities=("error", "warning"))
    return Scored(plan, estimate, cost, problems)


def _resident_fits(scored: list[Scored]) -> bool:
    return any(s.estimate.fits and all(s.plan.group(g) == "resident" for g in s.plan.residency) and not s.plan.fsdp
               for s in scored)


def rank(ctx: PlanContext, objective: Objective) -> tuple[list[Scored], list[Scored], list[Scored]]:
    """(valid plans best first, plans that do not fit, plans that fit but break a rule)."""
    scored = [score(ctx, p) for p in candidate_plans(ctx)]
    lossy_backend = attention_backend(ctx, True) if ctx.allow_lossy else ""
    if lossy_backend and lossy_backend not in ("fa", "torch_sdpa"):
        best = sorted((s for s in scored if s.estimate.fits), key=lambda s: s.cost.total_s)[:LOSSY_VARIANTS]
        scored += [score(ctx, s.plan.model_copy(update={"attention_backend": lossy_backend,
                                                         "lossy": [*s.plan.lossy, f"attn_{lossy_backend}"]}))
                   for s in best]
    fits_resident = _resident_fits(scored)
    fitting = [s for s in scored if s.estimate.fits]
    if objective == "balanced":
        fitting = [s for s in fitting if s.estimate.headroom_gb >= BALANCED_HEADROOM * ctx.budget_gb]
    if objective == "memory":
        fitting.sort(key=lambda s: (round(s.estimate.per_gpu_peak_gb, 1), s.cost.total_s))
    else:
        fitting.sort(key=lambda s: (round(s.cost.total_s, 4), s.plan.num_gpus, s.estimate.per_gpu_peak_gb))
    valid, broken = [], []
    for s in fitting:
        s.problems = check_rules(plan_facts(ctx, s.plan, resident_plan_fits=fits_resident), ctx.version,
                                 severities=("error", "warning"))
        (broken if s.problems else valid).append(s)
        if len(valid) >= 40:
            break
    return valid, [s for s in scored if not s.estimate.fits], broken
