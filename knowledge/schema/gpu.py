"""GPUs: memory, bandwidth, throughput, compute capability, interconnect, and the names drivers report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Entry


class Gpu(Entry):
    vendor: Literal["nvidia", "amd"] = "nvidia"
    aliases: list[str] = Field(default_factory=list, description="Spec-string names, e.g. 'h100', 'h100-sxm'.")
    form_factor: Literal["sxm", "pcie", "nvl", "consumer", "oam", "workstation"]
    memory_gb: float = Field(description="Memory in GiB as the driver reports it.")
    marketed_memory_gb: int
    bandwidth_gbs: float
    bf16_tflops: float = Field(description="Dense bf16 tensor throughput.")
    fp8_tflops: float | None = None
    fp4_tflops: float | None = None
    compute_capability: str = Field(pattern=r"^\d+\.\d+$")
    architecture: str
    interconnect: str = Field(description="e.g. 'nvlink4 900 GB/s', 'pcie5 x16'.")
    nvlink_gbs: float | None = None
    nvml_names: list[str] = Field(min_length=1, description="Exact names NVML and nvidia-smi report.")
