"""The request being planned: the caller's shape and sampling settings over the model's own defaults."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ...knowledge.schema import Model
from ..problems import ToolInputError


class Workload(BaseModel):
    width: int
    height: int
    num_frames: int
    num_inference_steps: int
    guidance_scale: float | None
    negative_prompt: bool = Field(description="A negative prompt is given (or the model has a default one).")
    num_outputs_per_prompt: int = 1
    condition_images: int = Field(default=0, description="Input images whose latents join the token sequence.")
    uses_cfg: bool = Field(description="A negative (unconditional) branch runs every step.")
    defaulted: list[str] = Field(default_factory=list, description="Fields taken from the model's defaults.")
    notes: list[str] = Field(default_factory=list, description="Where a default was replaced, and why.")


def _positive(name: str, value: int | float | None) -> None:
    if value is not None and value <= 0:
        raise ToolInputError("bad_workload", f"{name} must be positive, got {value}.",
                             f"Pass a positive {name}, or leave it out to use the model's default.", flag=name)


def resolve_workload(model: Model, version: str, *, width: int | None = None, height: int | None = None,
                     num_frames: int | None = None, num_inference_steps: int | None = None,
                     guidance_scale: float | None = None, negative_prompt: str | None = None,
                     image_width: int | None = None, image_height: int | None = None,
                     image_path: str | None = None, num_outputs_per_prompt: int = 1) -> Workload:
    for name, value in (("width", width), ("height", height), ("num_frames", num_frames),
                        ("num_inference_steps", num_inference_steps), ("num_outputs_per_prompt", num_outputs_per_prompt)):
        _positive(name, value)
    if guidance_scale is not None and guidance_scale < 0:
        raise ToolInputError("bad_workload", f"guidance_scale must be >= 0, got {guidance_scale}.",
                             "Pass 0 or more (1 or less turns CFG off).", flag="guidance_scale")
    for name, value in (("width", width), ("height", height)):
        if value is not None and value % 16:
            raise ToolInputError("bad_workload", f"{name}={value} is not a multiple of 16; the VAE and patching need it.",
                                 f"Use {value - value % 16 or 16} or {value + 16 - value % 16}.", flag=name)
    has_image = bool(image_path) or (image_width is not None and image_height is not None)
    if model.needs_image and not has_image:
        raise ToolInputError("image_required", f"{model.title} edits or animates an input image.",
                             "Pass image_path, or image_width and image_height, so the plan knows the input size.",
                             flag="image_path")
    defaults = model.defaults_for(version)
    notes: list[str] = []
    if model.modality == "video" and (defaults["frames"] or 1) <= 1 and num_frames is None:
        # some releases default a video model to one frame (Wan2.2 A14B up to 0.5.9): plan a real video
        defaults["frames"] = model.default_frames
        notes.append(f"sglang {version} defaults {model.title} to 1 frame; planned {model.default_frames} frames and "
                     "wrote --num-frames explicitly.")
    defaulted = [name for name, value in (("width", width), ("height", height), ("num_frames", num_frames),
                                          ("num_inference_steps", num_inference_steps),
                                          ("guidance_scale", guidance_scale)) if value is None]
    if model.modality == "image" and num_frames not in (None, 1):
        raise ToolInputError("bad_workload", f"{model.title} makes images; num_frames={num_frames} does not apply.",
                             "Leave num_frames out.", flag="num_frames")
    if width is None and height is None and model.task == "i2v" and image_width and image_height:
        # I2V keeps the input's aspect ratio at the model's default area.
        area = defaults["width"] * defaults["height"]
        ratio = image_width / image_height
        width = int((area * ratio) ** 0.5) // 16 * 16
        height = int((area / ratio) ** 0.5) // 16 * 16
    guidance = guidance_scale if guidance_scale is not None else defaults["guidance"]
    uses_cfg = model.cfg == "true_cfg" and (guidance or 0) > 1.0
    return Workload(
        width=width or defaults["width"], height=height or defaults["height"],
        num_frames=num_frames or defaults["frames"] or 1, num_inference_steps=num_inference_steps or defaults["steps"],
        guidance_scale=guidance, negative_prompt=bool(negative_prompt) or uses_cfg,
        num_outputs_per_prompt=num_outputs_per_prompt,
        condition_images=(1 if has_image else 0) if model.condition_image_tokens else 0,
        uses_cfg=uses_cfg, defaulted=defaulted, notes=notes,
    )
