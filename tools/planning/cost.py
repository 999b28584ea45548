"""A relative latency model, used to rank plans, never reported as a measurement.

Denoising: FLOPs of a DiT forward (2 x params x tokens for the linear layers, 4 x layers x tokens^2 x width for
attention; about 1.8 PFLOP for Wan 14B at 480x832x81, matching the H100 calibration), split over the SP group,
at a fixed share of the GPU's bf16 peak; plus Ulysses all-to-alls, ring passes, FSDP gathers and layerwise
copies that compute does not hide; times the CFG branches a GPU runs in turn. Per request: the copies of
CPU-offloaded components.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...knowledge.schema import Model
from .estimate import VramEstimate
from .plan import Plan
from .workload import Workload

MFU = 0.55  # share of bf16 peak a large DiT forward reaches (calibration: about 60 % on H100, eager SDPA)
COMPILE_SPEEDUP = 1.3  # calibration: Wan 1.3B forward 1350 -> 1040 ms with torch.compile
NVLINK_ALGBW_GBS = 450.0  # measured all-to-all on 2xH200 for 128-512 MB messages
PCIE_GBS = {"pcie": 20.0, "none": 20.0, "unknown": 20.0, "mixed": 20.0}
H2D_GBS = 20.0  # host-to-device copies of offloaded weights (pinned memory, PCIe 4/5)
RING_EFFICIENCY = 0.85  # ring attention overlaps less than Ulysses
# Time per layer and forward that sequence parallelism does not split (modulation, text tokens, launches), and
# FSDP's weight gathers, which overlap little: both fitted on SGLang's CI H100 baselines (knowledge evidence
# ev-ci-h100-flux1-two-gpus, ev-ci-h100-zimage-sp-vs-fsdp, ev-ci-h100-qwen-image-ring2; tests/test_cost_model.py).
# A fixed time, not a share: it matters for 4k-token images and vanishes for 75k-token videos.
SP_SERIAL_S_PER_LAYER = 0.0006
FSDP_GATHER_EXPOSURE = 2.0
# Attention speed relative to FlashAttention (seed: approximate attention ~1.5-2x on attention; SDPA slower
# than FA on long sequences).
ATTENTION_SPEED = {"": 1.0, "fa": 1.0, "torch_sdpa": 0.8, "sage_attn": 1.6, "sage_attn_3": 1.8}


@dataclass
class CostBreakdown:
    compute_s: float
    comm_s: float
    offload_s: float

    @property
    def total_s(self) -> float:
        return self.compute_s + self.comm_s + self.offload_s


def forward_flops(model: Model, tokens: int) -> tuple[float, float]:
    """(linear-layer FLOPs, attention FLOPs) of one DiT forward."""
    dit_params = sum(c.params_b for c in model.components if c.role == "dit" and c.active) * 1e9
    width = model.attention_heads * model.head_dim
    return 2 * dit_params * tokens, 4 * model.num_layers * tokens * tokens * width


def link_gbs(interconnect: str) -> float:
    return NVLINK_ALGBW_GBS if interconnect == "nvlink" else PCIE_GBS.get(interconnect, 20.0)


def plan_cost(model: Model, workload: Workload, plan: Plan, estimate: VramEstimate, bf16_tflops: float,
              interconnect: str) -> CostBreakdown:
    tokens = estimate.tokens
    branches = 2 if workload.uses_cfg and not plan.cfg_parallel else 1
    forwards = workload.num_inference_steps * branches * workload.num_outputs_per_prompt
    linear, attention = forward_flops(model, tokens)
    speed = bf16_tflops * 1e12 * MFU * (COMPILE_SPEEDUP if plan.compile else 1.0)
    one_gpu = linear / speed + attention / (speed * ATTENTION_SPEED.get(plan.attention_backend, 1.0))
    split = plan.sp * plan.tp
    serial = min(one_gpu, SP_SERIAL_S_PER_LAYER * model.num_layers)
    parallel = (one_gpu - serial) / split / (RING_EFFICIENCY if plan.ring > 1 else 1.0)
    compute_per_forward = one_gpu if split == 1 else serial + parallel
    bw = link_gbs(interconnect) * 1e9
    width = model.attention_heads * model.head_dim
    comm_per_forward = 0.0
    if plan.sp > 1:  # four all-to-alls per layer of the local shard (q, k, v in; output back)
        comm_per_forward += 4 * model.num_layers * (tokens / plan.sp) * width * 2 / bw
    if plan.tp > 1:  # two all-reduces per layer
        comm_per_forward += 2 * model.num_layers * (tokens / plan.sp) * width * 2 / bw
    dit_bytes = sum(c.params_b for c in model.components if c.role == "dit" and c.active) * 1e9 * 2
    exposed = 0.0
    if plan.fsdp and plan.num_gpus > 1:
        exposed += FSDP_GATHER_EXPOSURE * dit_bytes * (plan.num_gpus - 1) / plan.num_gpus / bw
    if plan.group("dit") == "layerwise":
        exposed += max(0.0, dit_bytes / (H2D_GBS * 1e9) - compute_per_forward) + 0.03 * compute_per_forward
    if plan.cfg_parallel:  # the two halves exchange their noise prediction once per step
        comm_per_forward += tokens * width * 2 / bw / max(1, model.num_layers)
    # offloaded encoders and VAEs cross PCIe once per use; a layerwise DiT is costed per forward above
    per_request = sum(c.full_gb * 1024 ** 3 for c in estimate.components
                      if c.residency == "cpu_offload" or (c.residency == "layerwise" and c.group != "dit"))
    return CostBreakdown(compute_s=forwards * compute_per_forward, comm_s=forwards * comm_per_forward,
                         offload_s=forwards * exposed + 2 * per_request / (H2D_GBS * 1e9))
