"""Per-GPU VRAM estimate of a plan: resident weights, activations, VAE decode, allocator overhead.

Memory peaks in one of three phases (text encoding, denoising, decoding); offloaded components count
only in the phase that uses them. Activations come from knowledge/activation.py (calibrated on H100).
sglang runs the CFG branches one after another, so CFG does not double them.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from ...knowledge.activation import estimate_activation
from ...knowledge.schema import Model
from .plan import Plan
from .workload import Workload

BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "nvfp4": 0.5625, "int4": 0.5625}
GIB = 1024 ** 3
# VAE decode workspace, fitted on SGLang's CI peaks (tests/fixtures/vram_cases), where decode lifts the runtime
# peak over the denoise peak. Video VAEs decode causally, a latent frame at a time, so the workspace follows the
# frame area (about 18.5 GiB per megapixel of one frame for Wan 832x480 to 1280x720), plus the fp32 output.
VAE_DECODE_GIB_PER_MPX = {"image": 1.2, "video": 18.5}
OUTPUT_BYTES_PER_PIXEL = 12  # three fp32 channels per output pixel and frame
# A layerwise-offloaded encoder or VAE keeps its non-block tensors (embeddings, towers) on the GPU.
LAYERWISE_AUX_RESIDENT_SHARE = 0.1
# On several GPUs without TP, sglang splits T5-family text encoders across the ranks (parallel folding).
FOLDED_ENCODERS = ("t5",)
TEXT_ENCODE_WORKSPACE_GIB = 0.5
CUDA_CONTEXT_GB = 0.75  # outside torch's reserved pool: CUDA context, cuBLAS/NCCL workspaces
NCCL_BUFFERS_GB = 0.5
# The estimate runs a few percent low on SGLang's measured peaks (tests/test_vram_estimate.py), so fitting
# keeps this share of the peak in reserve.
SAFETY_MARGIN = 0.08


class ComponentMemory(BaseModel):
    name: str
    group: str
    residency: str
    weights_gb: float = Field(description="Weights on one GPU while the component is in use, GiB.")
    resident_gb: float = Field(description="Weights that stay on the GPU for the whole request, GiB.")
    full_gb: float = Field(description="All of the component's weights, GiB.")


class VramEstimate(BaseModel):
    per_gpu_peak_gb: float = Field(description="Expected peak of torch's reserved memory per GPU, GiB.")
    peak_phase: str
    components: list[ComponentMemory]
    activations_gb: float
    vae_decode_gb: float
    allocator_overhead_gb: float
    runtime_overhead_gb: float = Field(description="CUDA context and NCCL buffers outside torch's pool, GiB.")
    budget_gb: float = Field(description="Memory per GPU the plan must fit in, GiB.")
    fits: bool
    headroom_gb: float = Field(description="budget - peak x (1 + safety margin) - runtime overhead, GiB (negative when "
                                           "it does not fit).")
    safety_margin: float = Field(default=SAFETY_MARGIN, description="Share of the peak kept in reserve.")
    tokens: int
    tokens_per_gpu: int
    activation_basis: str


def group_of(role: str) -> str:
    return role if role in ("dit", "text_encoder", "image_encoder", "vae") else "other"


def _layers_on_gpu(plan: Plan, layers: int) -> int:
    """Layerwise offload keeps the computing layer plus the prefetched ones (0.0 = one, 0.1 = 10 %, >=1 absolute)."""
    p = plan.prefetch
    prefetched = int(p) if p >= 1 else max(1, math.ceil(p * layers))
    return min(layers, prefetched + 1)


def _component_weights(model: Model, plan: Plan) -> list[ComponentMemory]:
    out = []
    active_dits = [c for c in model.components if c.role == "dit" and c.active]
    for comp in model.components:
        group = group_of(comp.role)
        residency = plan.group(group) if group != "other" else "resident"
        dtype = plan.weight_format if group == "dit" and plan.weight_format != "bf16" else comp.dtype
        full = comp.params_b * 1e9 * BYTES.get(dtype, BYTES.get(dtype.removeprefix("svdq-"), 2.0)) / GIB
        in_use = full
        if group in ("text_encoder", "image_encoder", "vae") and residency == "layerwise":
            in_use = full * LAYERWISE_AUX_RESIDENT_SHARE
        if group == "text_encoder" and plan.num_gpus > 1 and plan.tp == 1 and \
                any(key in comp.architecture.lower() for key in FOLDED_ENCODERS):
            in_use = in_use / plan.num_gpus
        if group == "dit":
            if plan.tp > 1:
                in_use = full / plan.tp
            if plan.fsdp and plan.num_gpus > 1:
                # sharded across every GPU, plus the gathered working set of about two layers
                in_use = full / plan.num_gpus + 2 * full / model.num_layers
            if residency == "layerwise":
                in_use = full * _layers_on_gpu(plan, model.num_layers) / model.num_layers
            if not comp.active and residency != "resident":
                in_use = 0.0 if comp not in active_dits else in_use  # an idle expert waits on the CPU
        resident = in_use if residency in ("resident", "layerwise") else 0.0
        out.append(ComponentMemory(name=comp.name, group=group, residency=residency, weights_gb=round(in_use, 3),
                                   resident_gb=round(resident, 3), full_gb=round(full, 3)))
    return out


def estimate_vram(model: Model, workload: Workload, plan: Plan, budget_gb: float) -> VramEstimate:
    comps = _component_weights(model, plan)
    resident = sum(c.resident_gb for c in comps)
    extra = {g: sum(c.weights_gb for c in comps if c.group == g and c.resident_gb == 0) for g in
             ("dit", "text_encoder", "image_encoder", "vae")}
    act = estimate_activation(model, width=workload.width, height=workload.height, frames=workload.num_frames,
                              sp_degree=plan.sp, tp_degree=plan.tp, num_outputs=workload.num_outputs_per_prompt,
                              condition_images=workload.condition_images)
    area = workload.width * workload.height
    output = workload.num_frames * area * OUTPUT_BYTES_PER_PIXEL / GIB
    vae_ws = (VAE_DECODE_GIB_PER_MPX[model.modality] * area / 1e6 + output) * workload.num_outputs_per_prompt
    pool = act.allocator_overhead_gb  # torch keeps its cached blocks across phases
    phases = {
        "text_encoding": resident + extra["text_encoder"] + extra["image_encoder"] + TEXT_ENCODE_WORKSPACE_GIB + pool,
        "denoising": resident + extra["dit"] + act.activation_gb + pool,
        "decoding": resident + extra["vae"] + vae_ws,
    }
    phase, peak = max(phases.items(), key=lambda kv: kv[1])
    runtime = CUDA_CONTEXT_GB + (NCCL_BUFFERS_GB if plan.num_gpus > 1 else 0.0)
    headroom = budget_gb - peak * (1 + SAFETY_MARGIN) - runtime
    return VramEstimate(
        per_gpu_peak_gb=round(peak, 2), peak_phase=phase, components=comps, activations_gb=act.activation_gb,
        vae_decode_gb=round(vae_ws, 2), allocator_overhead_gb=act.allocator_overhead_gb,
        runtime_overhead_gb=runtime, budget_gb=round(budget_gb, 2), fits=headroom >= 0,
        headroom_gb=round(headroom, 2), tokens=act.tokens.total, tokens_per_gpu=act.tokens_per_gpu,
        activation_basis=act.basis,
    )
