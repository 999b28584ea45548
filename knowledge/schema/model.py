"""Diffusion models: what they compute, how big their parts are, and sglang's defaults for them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from .common import Entry, Releases, Strict

# dit: runs at every denoising step (expert DiTs, audio towers and bridges included).
Role = Literal["dit", "text_encoder", "image_encoder", "vae", "upsampler", "audio", "other"]


class Component(Strict):
    name: str = Field(description="Pipeline component as model_index.json names it: transformer, transformer_2, "
                                  "text_encoder, vae, image_encoder ...")
    role: Role
    params_b: float = Field(gt=0, description="Parameters, in billions.")
    dtype: str = Field(default="bf16", description="Dtype sglang loads it in by default.")
    architecture: str = Field(default="", description="What it is, e.g. 'umT5-XXL encoder', 'CLIP ViT-L/14 text'.")
    active: bool = Field(default=True, description="False for a component that is loaded but idle for part of the "
                                                   "run, e.g. Wan2.2 A14B's second expert.")
    optional: bool = Field(default=False, description="Only loaded by some pipelines or flags (e.g. LTX-2's "
                                                      "two-stage upsampler).")
    note: str = ""


class DefaultsOverride(Strict):
    """sglang's sampling defaults for this model in a range of releases, where they differ from the current ones."""

    releases: Releases
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    steps: int | None = None
    guidance: float | None = None
    note: str = ""


class Model(Entry):
    family: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$",
                        description="Family key used by rules, e.g. 'wan2.2', 'flux.1', 'qwen-image'.")
    family_default: bool = Field(default=False, description="The entry whose defaults an unknown model of this "
                                                            "family borrows (exactly one per family).")
    hf_ids: list[str] = Field(min_length=1, description="Hugging Face ids sglang registers or detects, canonical "
                                                        "first.")
    aliases: list[str] = Field(default_factory=list, description="Short names users type.")
    not_matching: list[str] = Field(
        default_factory=list, description="Names that contain this model's repo name but are other models "
                                          "(e.g. HunyuanVideo-1.5), so name containment must not match them.")
    pipeline_class: str = Field(description="diffusers _class_name in model_index.json.")
    config_signature: dict[str, Any] = Field(
        default_factory=dict,
        description="transformer/config.json values that tell this model apart from others with the same "
                    "pipeline_class (used to identify local folders offline).")
    task: Literal["t2i", "ti2i", "edit", "t2v", "i2v", "ti2v", "i2av", "ti2av"] = Field(
        description="t2i text-to-image; ti2i text (+ optional reference images) to image; edit: image required; "
                    "t2v/i2v/ti2v video; i2av/ti2av video with audio.")
    modality: Literal["image", "video"]
    outputs_audio: bool = False
    sglang_native: bool = Field(default=True, description="sglang has a native pipeline for it; False means "
                                                          "run it with --backend diffusers.")
    support_note: str = ""
    gated: bool = Field(default=False, description="The Hugging Face repo needs an accepted licence and HF_TOKEN.")
    needs_image: bool = Field(default=False, description="A request must carry an input image (image_path).")
    accepts_image: bool = Field(default=False, description="An input image is accepted (required or optional).")
    max_input_images: int = Field(default=0, ge=0)
    cfg: Literal["true_cfg", "distilled", "none"] = Field(
        description="true_cfg: a negative branch runs each step by default; distilled: guidance is embedded in "
                    "the model, one branch; none: no guidance at all (e.g. step-distilled at guidance 0).")
    cfg_parallel_ok: bool = Field(
        default=True, description="sglang accepts --enable-cfg-parallel for it. It only helps when the request "
                                  "runs a negative branch (cfg == true_cfg, or a negative prompt with guidance > 1).")
    attention_heads: int = Field(gt=0, description="Heads of the main DiT's attention (Ulysses must divide them).")
    extra_attention_heads: list[int] = Field(
        default_factory=list, description="Heads of other attention towers that sequence parallel also splits "
                                          "(audio towers of LTX-2 and MOVA).")
    head_dim: int = 128
    hidden_size: int = Field(gt=0)
    ffn_dim: int = Field(gt=0, description="Feed-forward inner width of the main blocks.")
    num_layers: int = Field(gt=0, description="Transformer blocks of one DiT (double + single for MM-DiT).")
    layers_note: str = ""
    components: list[Component] = Field(min_length=1)
    vae_stride: list[int] = Field(description="[temporal, spatial] for video, [spatial] for image.")
    patch_size: list[int] = Field(description="[t, h, w] for video, [h, w] for image: patching after the VAE.")
    text_tokens: int = Field(default=0, ge=0, description="Text tokens attended jointly with the image tokens (0 when "
                                                          "text enters through cross-attention).")
    condition_image_tokens: bool = Field(
        default=False, description="Input images are encoded and appended to the token sequence (edit models), "
                                   "so each one adds its own latent tokens.")
    default_width: int
    default_height: int
    default_frames: int = 1
    default_steps: int
    default_guidance: float | None = None
    defaults_note: str = ""
    default_overrides: list[DefaultsOverride] = Field(default_factory=list)
    recommended_steps: int | None = Field(default=None, description="The model card's step count where it differs "
                                                                    "from sglang's default.")
    recommended_guidance: float | None = None
    moe_experts: int = Field(default=1, description="Wan2.2 A14B / MOVA: expert DiTs, one active per step.")
    activation_mib_per_token: float = Field(
        gt=0, description="Activation memory (peak allocated minus weights) of one DiT forward, MiB per token.")
    activation_basis: Literal["measured", "derived"] = Field(
        description="measured: fitted to tests/fixtures/calibration; derived: scaled from a measured model.")
    allocator_base_gib: float | None = Field(
        default=None, ge=0, description="Measured reserved-minus-allocated at zero activation, GiB; null uses "
                                        "the global default.")

    @model_validator(mode="after")
    def _consistent(self) -> Model:
        video = self.modality == "video"
        if video and (len(self.vae_stride) != 2 or len(self.patch_size) != 3):
            raise ValueError("video models need vae_stride [t, s] and patch_size [t, h, w]")
        if not video and (len(self.vae_stride) != 1 or len(self.patch_size) != 2):
            raise ValueError("image models need vae_stride [s] and patch_size [h, w]")
        if video != (self.default_frames > 1):
            raise ValueError("default_frames must be > 1 exactly for video models")
        if self.needs_image and not self.accepts_image:
            raise ValueError("needs_image implies accepts_image")
        if self.accepts_image and self.max_input_images < 1:
            raise ValueError("accepts_image needs max_input_images >= 1")
        dits = [c for c in self.components if c.role == "dit"]
        if not dits:
            raise ValueError("at least one 'dit' component")
        experts = [c for c in dits if not c.optional and c.name.startswith(("transformer", "video_dit"))]
        if self.moe_experts != max(1, len(experts)):
            raise ValueError("moe_experts must match the number of expert DiT components")
        if len({c.name for c in self.components}) != len(self.components):
            raise ValueError("component names must be unique")
        return self

    def component_params_b(self, roles: tuple[str, ...] | None = None) -> float:
        """Total parameters in billions, optionally only of the given roles."""
        return sum(c.params_b for c in self.components if roles is None or c.role in roles)

    def defaults_for(self, version: str | None = None) -> dict[str, Any]:
        """sglang's sampling defaults (width, height, frames, steps, guidance) in one release."""
        out = {"width": self.default_width, "height": self.default_height, "frames": self.default_frames,
               "steps": self.default_steps, "guidance": self.default_guidance}
        if version:
            for ov in self.default_overrides:
                if ov.releases.contains(version):
                    out |= {k: v for k, v in ov.model_dump(include=set(out)).items() if v is not None}
        return out
