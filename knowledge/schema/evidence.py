"""Measured evidence, with the setting it was measured in."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Entry


class Evidence(Entry):
    measured: bool = Field(description="True if measured; False if read (e.g. a claim in a PR or blog).")
    model: str
    gpu: str
    gpu_count: int = 1
    shape: str = Field(default="", description="WxH or WxHxF, as measured; empty where no shape applies.")
    steps: int | None = None
    sglang_version: str = ""
    flags: list[str] = Field(default_factory=list)
    result: str = Field(description="What was observed, with units.")
    metric: Literal["latency", "speedup", "memory", "throughput", "bandwidth", "quality", "other"] = "other"
    value: float | None = None
    unit: str = ""
    conditions: dict[str, str] = Field(
        default_factory=dict, description="Other settings that matter: batch, dtype, attention, torch, driver ...",
    )
    supports: list[str] = Field(default_factory=list, description="Ids of the options or rules it supports.")
