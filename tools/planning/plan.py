"""A plan: every parallel degree and every component's residency, explicitly."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Residency = Literal["resident", "cpu_offload", "layerwise"]
GROUPS = ("dit", "text_encoder", "image_encoder", "vae")
ROLE_GROUP = {"dit": "dit", "text_encoder": "text_encoder", "image_encoder": "image_encoder", "vae": "vae"}


class Plan(BaseModel):
    num_gpus: int = 1
    cfg_parallel: bool = False
    tp: int = 1
    ulysses: int = 1
    ring: int = 1
    fsdp: bool = False
    residency: dict[str, Residency] = Field(default_factory=dict, description="Per group: dit, text_encoder, "
                                                                               "image_encoder, vae.")
    prefetch: float = Field(default=0.0, description="--dit-offload-prefetch-size, used with layerwise offload.")
    compile: bool = False
    warmup: bool = True
    attention_backend: str = Field(default="", description="'' lets sglang choose.")
    lossy: list[str] = Field(default_factory=list, description="Ids of lossy options switched on.")
    dit_precision: str = Field(default="", description="--dit-precision ('' keeps the model's bf16).")
    weight_format: str = Field(default="bf16", description="DiT weights as loaded: bf16, fp8, nvfp4, svdq-int4 ...")

    @property
    def sp(self) -> int:
        return self.ulysses * self.ring

    @property
    def cfg_degree(self) -> int:
        return 2 if self.cfg_parallel else 1

    def group(self, group: str) -> Residency:
        return self.residency.get(group, "resident")

    def label(self) -> str:
        parts = [f"{self.num_gpus} GPU" + ("s" if self.num_gpus > 1 else "")]
        if self.cfg_parallel:
            parts.append("CFG parallel")
        if self.sp > 1:
            parts.append(f"Ulysses {self.ulysses}" + (f" x Ring {self.ring}" if self.ring > 1 else ""))
        if self.fsdp:
            parts.append("FSDP")
        offloaded = [g for g in GROUPS if self.group(g) != "resident"]
        parts.append("all resident" if not offloaded else
                     ", ".join(f"{g} {self.group(g).replace('_', ' ')}" for g in offloaded))
        if self.compile:
            parts.append("compile")
        parts += [o.removeprefix("attn_") for o in self.lossy if o != "dit_precision"]
        if self.dit_precision:
            parts.append(f"DiT {self.dit_precision}")
        if self.weight_format != "bf16":
            parts.append(f"{self.weight_format} weights")
        return ", ".join(parts)
