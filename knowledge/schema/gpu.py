"""GPUs: memory, bandwidth, throughput, compute capability, interconnect, and the names drivers report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .common import Entry

InterconnectKind = Literal["nvswitch", "nvlink_bridge", "pcie", "xgmi"]


class Gpu(Entry):
    vendor: Literal["nvidia", "amd"] = "nvidia"
    supported: bool = Field(default=True, description="False where sglang-diffusion-mcp cannot analyse this GPU yet "
                                                      "(AMD/ROCm).")
    family: str = Field(pattern=r"^[a-z0-9]+$",
                        description="Spec-string family, normalised (lowercase, no separators): 'h100', 'rtxpro6000'.")
    family_default: bool = Field(default=False, description="The form a bare family name means (H100 -> SXM).")
    spec_name: str = Field(description="How a hardware spec writes the family, e.g. 'H100', 'RTX4090'.")
    aliases: list[str] = Field(default_factory=list,
                               description="Other spec-string names of the family, e.g. 'rtx6000ada'.")
    form_factor: Literal["sxm", "pcie", "nvl", "consumer", "oam", "workstation"]
    memory_gb: float = Field(description="Memory in GiB as the driver reports it (total, before any use).")
    memory_mib: int | None = Field(default=None, description="Total memory in MiB as nvidia-smi prints it.")
    marketed_memory_gb: int = Field(description="The memory the vendor markets, in GB (the spec's -<memory>GB).")
    bandwidth_gbs: float = Field(description="Memory bandwidth in GB/s (vendor datasheet).")
    bf16_tflops: float | None = Field(default=None, description="Dense bf16 tensor throughput (no sparsity); "
                                                                "null where the GPU has no bf16 tensor cores.")
    fp16_tflops: float | None = Field(default=None, description="Dense fp16 tensor throughput (no sparsity).")
    fp8_tflops: float | None = Field(default=None, description="Dense fp8 tensor throughput; null: no fp8.")
    fp4_tflops: float | None = Field(default=None, description="Dense fp4 tensor throughput; null: no fp4.")
    compute_capability: str | None = Field(default=None, pattern=r"^\d+\.\d+$",
                                           description="CUDA compute capability; null for AMD.")
    gfx_arch: str | None = Field(default=None, description="AMD gfx target, e.g. gfx942.")
    architecture: str = Field(description="Architecture as nvidia-smi names it ('Hopper', 'Ada Lovelace').")
    interconnect: str = Field(description="e.g. 'nvlink4 900 GB/s via NVSwitch', 'pcie5 x16'.")
    interconnect_kind: InterconnectKind = Field(
        description="nvswitch: every GPU of the usual server NVLinks to every other; nvlink_bridge: NVLink "
                    "bridges join up to nvlink_bridge_max cards; pcie: PCIe only; xgmi: AMD Infinity Fabric.")
    nvlink_gbs: float | None = Field(default=None, description="NVLink bandwidth per GPU, GB/s, both directions.")
    nvlink_bridge_max: int | None = Field(default=None, description="Cards one NVLink bridge set joins (2 or 4).")
    pcie_p2p: bool = Field(default=True, description="False where the driver disables PCIe peer-to-peer (GeForce).")
    nvml_names: list[str] = Field(min_length=1, description="Exact names NVML and nvidia-smi (or amd-smi) report.")
    name_tokens: list[str] = Field(min_length=1, description="Fallback match for unlisted names: every token must "
                                                            "appear in the reported name (lowercase words).")
    name_excludes: list[str] = Field(default_factory=list, description="Fallback match fails if any appears.")

    @model_validator(mode="after")
    def _check(self) -> "Gpu":
        if self.vendor == "nvidia" and self.compute_capability is None:
            raise ValueError("an NVIDIA GPU needs compute_capability")
        if self.interconnect_kind == "nvlink_bridge" and not self.nvlink_bridge_max:
            raise ValueError("interconnect_kind nvlink_bridge needs nvlink_bridge_max")
        return self
