"""Known fast paths: work already optimized in sglang, to check before proposing new kernels."""

from __future__ import annotations

from pydantic import Field

from .common import Entry


class FastPath(Entry):
    covers: list[str] = Field(description="Operations or hotspot kinds it covers, e.g. 'qk_norm_rope'.")
    model_families: list[str] = Field(default_factory=list)
    where: str = Field(description="Where the code lives in sglang.")
    how_to_enable: str = "automatic"
