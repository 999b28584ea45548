"""Diffusion models: what they compute and how big their parts are."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Entry, Strict


class Component(Strict):
    name: str = Field(description="Pipeline component: transformer, transformer_2, text_encoder, vae, image_encoder ...")
    role: Literal["dit", "text_encoder", "image_encoder", "vae", "upsampler", "audio", "other"]
    params_b: float = Field(description="Parameters, in billions.")
    dtype: str = "bf16"
    note: str = ""


class Model(Entry):
    family: str = Field(description="Family key used by rules, e.g. 'wan2.2', 'flux.1', 'qwen-image'.")
    hf_ids: list[str] = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list, description="Short names users type.")
    pipeline_class: str = Field(default="", description="diffusers _class_name in model_index.json.")
    task: Literal["t2i", "i2i", "edit", "t2v", "i2v", "ti2v", "t2av", "i2av"]
    modality: Literal["image", "video"]
    gated: bool = False
    needs_image: bool = False
    cfg: Literal["true_cfg", "distilled", "none"] = Field(
        description="true_cfg: a negative branch runs each step; distilled: guidance embedded, one branch; none.",
    )
    cfg_parallel_ok: bool = True
    attention_heads: int
    head_dim: int = 128
    num_layers: int
    components: list[Component] = Field(min_length=1)
    vae_stride: list[int] = Field(description="[temporal, spatial] or [spatial] compression.")
    patch_size: list[int] = Field(description="[t, h, w] or [h, w] patching after the VAE.")
    text_tokens: int = Field(default=0, description="Text tokens attended jointly with image tokens (0 if cross-attention).")
    default_width: int
    default_height: int
    default_frames: int = 1
    default_steps: int
    default_guidance: float | None = None
    moe_experts: int = Field(default=1, description="Wan2.2 A14B: two expert transformers, one active per step.")
