"""Result models of detect_gpus: GPUs, MIG slices, processes, links between GPUs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..problems import Problem

Source = Literal["nvml", "nvidia-smi", "snapshot", "none"]
LinkKind = Literal["nvlink", "pix", "pxb", "phb", "node", "sys", "unknown"]
PcieLevel = Literal["pix", "pxb", "phb", "node", "sys"]

MAX_PROCESSES_PER_GPU = 8  # results stay small; `processes_total` keeps the real count


class GpuProcess(BaseModel):
    pid: int
    used_memory_mib: int | None = Field(default=None, description="GPU memory the process uses, MiB "
                                                                  "(null where the driver does not say).")
    name: str | None = Field(default=None, description="Process name (nvidia-smi only).")


class MigSlice(BaseModel):
    """One MIG instance of a GPU in MIG mode; never counted as a whole GPU."""

    index: int
    name: str | None = None
    uuid: str | None = None
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None


class GpuInfo(BaseModel):
    index: int = Field(description="NVML index, which is PCI bus order.")
    name: str
    uuid: str | None = None
    pci_bus_id: str | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = Field(default=None, description="Used by processes; driver-reserved memory is "
                                                                  "not counted (NVML v2 memory API).")
    memory_free_mib: int | None = None
    memory_reserved_mib: int | None = Field(default=None, description="Reserved by the driver, MiB.")
    memory_total_gb: float | None = Field(default=None, description="memory_total_mib in GiB.")
    compute_capability: str | None = Field(default=None, description="Like '9.0'.")
    architecture: str | None = None
    utilization_pct: int | None = None
    processes: list[GpuProcess] = Field(default_factory=list, description="Compute processes, capped.")
    processes_total: int | None = Field(default=None, description="Number of compute processes; null: unknown.")
    idle: bool = Field(default=False, description="No compute process, <= 32 MiB used, <= 5 % utilization, "
                                                  "not in MIG mode.")
    busy_reasons: list[str] = Field(default_factory=list, description="Why the GPU is not idle.")
    mig_enabled: bool = False
    mig_slices: list[MigSlice] = Field(default_factory=list)
    kb_gpu: str | None = Field(default=None, description="Id of the knowledge-base GPU entry this GPU is.")
    kb_match: Literal["exact", "approximate"] | None = Field(
        default=None, description="exact: the reported name is listed in the entry; approximate: matched by "
                                  "name tokens and memory.")


class GpuLink(BaseModel):
    a: int
    b: int
    kind: LinkKind = Field(description="nvlink, or the PCIe level: pix < pxb < phb < node < sys.")
    nvlink_count: int = Field(default=0, description="NVLinks between the pair; on NVSwitch hosts the active "
                                                     "links per GPU, as nvidia-smi prints NV18.")
    pcie_level: PcieLevel | None = Field(default=None, description="The PCIe path, also for NVLink pairs where "
                                                                   "known.")


class DetectGpusResult(BaseModel):
    source: Source = Field(description="Where the answer came from: nvml, nvidia-smi, snapshot, or none.")
    driver_version: str | None = None
    cuda_driver_version: str | None = Field(default=None, description="CUDA version the driver supports, "
                                                                      "like '13.0'.")
    gpu_count: int = Field(default=0, description="Whole GPUs (GPUs in MIG mode are not whole GPUs).")
    mig_slice_count: int = 0
    gpus: list[GpuInfo] = Field(default_factory=list)
    links: list[GpuLink] = Field(default_factory=list, description="Every GPU pair.")
    all_nvlink: bool = Field(default=False, description="True when there are pairs and every pair is NVLink.")
    idle_gpus: list[int] = Field(default_factory=list, description="Indices of idle whole GPUs.")
    recommended_env: dict[str, str] = Field(default_factory=dict, description="CUDA_DEVICE_ORDER=PCI_BUS_ID and, "
                                            "unless already set, CUDA_VISIBLE_DEVICES with the idle GPUs.")
    cuda_visible_devices: str | None = Field(default=None, description="CUDA_VISIBLE_DEVICES as already set in "
                                                                       "this environment, if it is.")
    amd_gpus_seen: int = Field(default=0, description="AMD GPUs amd-smi reported; seen, not analysed.")
    snapshot_dir: str | None = None
    warnings: list[Problem] = Field(default_factory=list)
    elapsed_ms: float = 0.0
