"""Token counts and activation memory of one DiT forward, per GPU (pure functions, no I/O).

Model: activation (peak allocated minus weights) = INTERCEPT_MIB + k * tokens, with k the model's
`activation_mib_per_token` (knowledge/data/models.yaml). Allocator overhead (reserved minus allocated) =
base + ALLOCATOR_RATIO * activation, base per model where measured. Both were fitted by
scripts/fit_activation.py on tests/fixtures/calibration/dit-forward-h100.jsonl (eager diffusers, bf16, H100).

sglang runs the CFG branches one after another on a GPU (DenoisingStage._predict_noise_with_cfg in 0.5.10.post1
and 0.5.23), so CFG does not double the activation peak; `cfg_batched=True` covers runtimes that batch them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, Field

from .schema.model import Model

INTERCEPT_MIB = 37.0  # fitted jointly over all calibration models
ALLOCATOR_RATIO = 0.75  # reserved-minus-allocated grows by this fraction of the activation
DEFAULT_ALLOCATOR_BASE_GIB = 1.0  # for models without a measured base (measured ones span 0 to 1.9)
_MIB_PER_GIB = 1024.0


class TokenCount(BaseModel):
    """Sequence length of one DiT forward for one sample."""

    latent_frames: int = Field(description="Frames after the VAE's temporal compression (1 for images).")
    latent_height: int = Field(description="Latent height after the VAE and patching.")
    latent_width: int = Field(description="Latent width after the VAE and patching.")
    visual_tokens: int = Field(description="Tokens of the generated image or video.")
    condition_tokens: int = Field(default=0, description="Tokens of input images appended to the sequence.")
    text_tokens: int = Field(default=0, description="Text tokens attended jointly (0 for cross-attention).")
    total: int = Field(description="visual + condition + text tokens.")


class ActivationEstimate(BaseModel):
    """Activation memory of one DiT forward on one GPU."""

    tokens: TokenCount
    tokens_per_gpu: int = Field(description="Tokens one GPU holds after sequence parallelism, times the batch.")
    activation_gb: float = Field(description="Peak allocated minus weights, GiB per GPU.")
    allocator_overhead_gb: float = Field(description="Reserved minus allocated expected on top, GiB per GPU.")
    mib_per_token: float
    basis: str = Field(description="'measured' or 'derived' (see the model's activation_basis).")


def latent_frames(frames: int, temporal_stride: int) -> int:
    """Frames after the VAE: the first frame alone, then one latent per stride (sglang rounds frames to 4k+1)."""
    if frames < 1 or temporal_stride < 1:
        raise ValueError("frames and temporal_stride must be >= 1")
    return (frames - 1) // temporal_stride + 1


def token_count(frames: int, height: int, width: int, vae_stride: Sequence[int], patch_size: Sequence[int],
                text_tokens: int = 0, condition_images: int = 0) -> TokenCount:
    """Tokens for a workload. vae_stride is [spatial] or [temporal, spatial]; patch_size [h, w] or [t, h, w].

    Condition images are assumed to be encoded at the output size (Qwen-Image-Edit and Kontext resize the
    input to about the output area).
    """
    if height < 1 or width < 1:
        raise ValueError("height and width must be >= 1")
    if condition_images < 0 or text_tokens < 0:
        raise ValueError("condition_images and text_tokens must be >= 0")
    t_stride, s_stride = (1, vae_stride[0]) if len(vae_stride) == 1 else (vae_stride[0], vae_stride[1])
    t_patch, h_patch, w_patch = (1, *patch_size) if len(patch_size) == 2 else tuple(patch_size)
    lat_f = math.ceil(latent_frames(frames, t_stride) / t_patch)
    lat_h = max(1, height // s_stride // h_patch)
    lat_w = max(1, width // s_stride // w_patch)
    visual = lat_f * lat_h * lat_w
    condition = condition_images * lat_h * lat_w
    return TokenCount(latent_frames=lat_f, latent_height=lat_h, latent_width=lat_w, visual_tokens=visual,
                      condition_tokens=condition, text_tokens=text_tokens, total=visual + condition + text_tokens)


def model_token_count(model: Model, width: int | None = None, height: int | None = None,
                      frames: int | None = None, condition_images: int | None = None,
                      text_tokens: int | None = None) -> TokenCount:
    """token_count with the model's VAE, patching, joint text tokens and sglang defaults filled in."""
    if condition_images is None:
        condition_images = 1 if model.condition_image_tokens and model.needs_image else 0
    if not model.condition_image_tokens:
        condition_images = 0  # channel-concatenated or cross-attended inputs add no tokens
    return token_count(frames or model.default_frames, height or model.default_height, width or model.default_width,
                       model.vae_stride, model.patch_size,
                       model.text_tokens if text_tokens is None else text_tokens, condition_images)


def activation_gib(tokens: int, mib_per_token: float, *, sp_degree: int = 1, tp_degree: int = 1,
                   batch: int = 1) -> float:
    """Activation GiB per GPU: sequence parallelism splits the tokens; tensor parallelism splits the widths."""
    if min(sp_degree, tp_degree, batch) < 1:
        raise ValueError("sp_degree, tp_degree and batch must be >= 1")
    per_gpu_tokens = tokens * batch / sp_degree
    return (INTERCEPT_MIB + mib_per_token * per_gpu_tokens / tp_degree) / _MIB_PER_GIB


def allocator_overhead_gib(activation: float, base_gib: float | None = None) -> float:
    """Reserved minus allocated, GiB: a per-model base plus a share of the activation."""
    base = DEFAULT_ALLOCATOR_BASE_GIB if base_gib is None else base_gib
    return base + ALLOCATOR_RATIO * max(0.0, activation)


def estimate_activation(model: Model, *, width: int | None = None, height: int | None = None,
                        frames: int | None = None, sp_degree: int = 1, tp_degree: int = 1,
                        num_outputs: int = 1, cfg_batched: bool = False,
                        condition_images: int | None = None) -> ActivationEstimate:
    """Activation and allocator overhead of one DiT forward on one GPU for this model and workload."""
    tokens = model_token_count(model, width, height, frames, condition_images)
    batch = num_outputs * (2 if cfg_batched and model.cfg == "true_cfg" else 1)
    act = activation_gib(tokens.total, model.activation_mib_per_token, sp_degree=sp_degree, tp_degree=tp_degree,
                         batch=batch)
    return ActivationEstimate(
        tokens=tokens, tokens_per_gpu=math.ceil(tokens.total * batch / sp_degree), activation_gb=round(act, 3),
        allocator_overhead_gb=round(allocator_overhead_gib(act, model.allocator_base_gib), 3),
        mib_per_token=model.activation_mib_per_token, basis=model.activation_basis)
