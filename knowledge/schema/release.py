"""sglang releases: a capability table per release, generated from the real wheels by scripts/."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Entry, Strict


class FlagInfo(Strict):
    flag: str
    style: Literal["switch", "bool_value", "value", "choice"]
    choices: list[str] = Field(default_factory=list)
    default: str | None = None


class Release(Entry):
    version: str
    flags: list[FlagInfo] = Field(description="Every `sglang generate` flag this release accepts.")
    warmup: list[str] = Field(description="The argv that turns warmup on, e.g. ['--warmup'].")
    vram_log_format: Literal["A", "B", "C", "none"]
    vram_log_level: Literal["info", "debug", "none"]
    offload_defaults: list[str] = Field(default_factory=list, description="What sglang decides for unset offload flags.")
    performance_mode: bool = False
    facts: dict[str, str] = Field(default_factory=dict)
