"""Live NVML as a source (pynvml from nvidia-ml-py, imported lazily), run in a worker thread with a deadline.

NVML facts this relies on:
- nvmlDeviceGetMemoryInfo v2 separates driver-reserved memory from `used`, so numbers match nvidia-smi
  (v1 counts the reserved ~500-600 MiB as used and would make every idle GPU look busy).
- nvmlDeviceGetTopologyCommonAncestor only describes the PCIe path; NVLink is read separately, per link.
- On NVSwitch hosts a link's remote end is the switch, not a GPU: a pair's count is then the active links per
  GPU when P2P over NVLink is OK between them, which is what nvidia-smi prints as NV18.
- pynvml's NVML_P2P_CAPS_INDEX_READ is the tuple (0,) (a trailing comma in pynvml), so pass plain ints.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..problems import Problem
from .model import MAX_PROCESSES_PER_GPU, GpuInfo, GpuLink, GpuProcess, MigSlice

ARCHITECTURES = {2: "Kepler", 3: "Maxwell", 4: "Pascal", 5: "Volta", 6: "Turing", 7: "Ampere", 8: "Ada Lovelace",
                 9: "Hopper", 10: "Blackwell", 13: "Rubin"}
PCIE_LEVELS = {0: "pix", 10: "pix", 20: "pxb", 30: "phb", 40: "node", 50: "sys"}  # NVML_TOPOLOGY_*
P2P_CAPS_INDEX_NVLINK = 2
P2P_STATUS_OK = 0
ERR_INVALID_ARGUMENT, ERR_NOT_SUPPORTED, ERR_NOT_FOUND = 2, 3, 6
ERR_DRIVER_NOT_LOADED, ERR_LIBRARY_NOT_FOUND, ERR_FUNCTION_NOT_FOUND = 9, 12, 13
MIB = 1024 * 1024

# A probe thread that never came back (hung driver). While it is stuck, later calls skip NVML at once.
_stuck: threading.Thread | None = None


@dataclass
class NvmlHost:
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    gpus: list[GpuInfo] = field(default_factory=list)
    links: dict[tuple[int, int], GpuLink] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)


def load_pynvml() -> Any:
    import pynvml  # lazily: the server never pays for it unless detect_gpus runs

    return pynvml


def _mib(value: Any, ceil: bool = False) -> int | None:
    """Bytes to MiB the way nvidia-smi prints them: nearest (reserved: rounded up)."""
    if not isinstance(value, int):
        return None
    return -(-value // MIB) if ceil else (value + MIB // 2) // MIB


def _str(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _code(exc: BaseException) -> int | None:
    return getattr(exc, "value", None)


class _Probe:
    def __init__(self, nvml: Any):
        self.nvml = nvml
        self.error_type = getattr(nvml, "NVMLError", Exception)
        self.warnings: list[Problem] = []
        self.not_supported: dict[str, list[int]] = {}

    def query(self, what: str, gpu: int | None, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        """One NVML query; "not supported" leaves the field empty, other errors also warn."""
        fn = getattr(self.nvml, fn_name, None)
        if fn is None:
            self.not_supported.setdefault(what, []).append(gpu if gpu is not None else -1)
            return None
        try:
            return fn(*args, **kwargs)
        except self.error_type as exc:
            if _code(exc) in (ERR_NOT_SUPPORTED, ERR_FUNCTION_NOT_FOUND):
                self.not_supported.setdefault(what, []).append(gpu if gpu is not None else -1)
            else:
                where = f"GPU {gpu}: " if gpu is not None else ""
                self.warnings.append(Problem(code="nvml_query_failed", message=f"{where}NVML could not read {what} "
                                             f"({type(exc).__name__}: {exc}); that field is left empty."))
            return None

    def memory(self, i: int, handle: Any) -> Any:
        v2 = getattr(self.nvml, "nvmlMemory_v2", None)
        if v2 is not None:
            try:
                return self.nvml.nvmlDeviceGetMemoryInfo(handle, version=v2)
            except self.error_type as exc:
                if _code(exc) not in (ERR_NOT_SUPPORTED, ERR_FUNCTION_NOT_FOUND):
                    return self.query("memory", i, "nvmlDeviceGetMemoryInfo", handle, version=v2)
        mem = self.query("memory", i, "nvmlDeviceGetMemoryInfo", handle)
        if mem is not None:
            self.warnings.append(Problem(code="nvml_memory_v1", message=f"GPU {i}: the driver has no v2 memory API; "
                                         "used memory includes the driver's reserved memory.",
                                         fix="Update the NVIDIA driver to get exact used/free figures."))
        return mem

    def processes(self, i: int, handle: Any) -> list[GpuProcess] | None:
        procs = self.query("processes", i, "nvmlDeviceGetComputeRunningProcesses", handle)
        if procs is None:
            return None
        out = []
        for p in procs:
            used = getattr(p, "usedGpuMemory", None)
            out.append(GpuProcess(pid=int(p.pid), used_memory_mib=_mib(used)))
        return out

    def mig(self, i: int, handle: Any) -> tuple[bool, list[MigSlice]]:
        mode = self.query("MIG mode", i, "nvmlDeviceGetMigMode", handle)
        if not mode or mode[0] != 1:
            return False, []
        slices = []
        for j in range(self.query("MIG device count", i, "nvmlDeviceGetMaxMigDeviceCount", handle) or 0):
            try:
                mh = self.nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, j)
            except self.error_type:
                continue  # empty slot
            mem = self.query("MIG memory", i, "nvmlDeviceGetMemoryInfo", mh)
            name = self.query("MIG name", i, "nvmlDeviceGetName", mh)
            uuid = self.query("MIG uuid", i, "nvmlDeviceGetUUID", mh)
            slices.append(MigSlice(index=len(slices), name=_str(name) if name is not None else None,
                                   uuid=_str(uuid) if uuid is not None else None,
                                   gpu_instance_id=self.query("MIG GPU instance", i, "nvmlDeviceGetGpuInstanceId", mh),
                                   compute_instance_id=self.query("MIG compute instance", i,
                                                                  "nvmlDeviceGetComputeInstanceId", mh),
                                   memory_total_mib=_mib(mem.total) if mem is not None else None,
                                   memory_used_mib=_mib(mem.used) if mem is not None else None))
        return True, slices

    def nvlinks(self, i: int, handle: Any) -> list[str | None]:
        """Remote PCI bus id (None if unknown) of every active NVLink of a GPU."""
        remotes: list[str | None] = []
        for link in range(int(getattr(self.nvml, "NVML_NVLINK_MAX_LINKS", 18))):
            try:
                state = self.nvml.nvmlDeviceGetNvLinkState(handle, link)
            except self.error_type as exc:
                if _code(exc) not in (ERR_NOT_SUPPORTED, ERR_INVALID_ARGUMENT, ERR_NOT_FOUND):
                    self.warnings.append(Problem(code="nvml_query_failed", message=f"GPU {i}: NVLink {link} state "
                                                 f"unreadable ({type(exc).__name__}: {exc})."))
                break  # past the last link, or no NVLink at all
            if state != 1:
                continue
            try:
                remote = _str(self.nvml.nvmlDeviceGetNvLinkRemotePciInfo(handle, link).busId).upper()
            except self.error_type:
                remote = None
            remotes.append(remote)
        return remotes

    def gpu(self, i: int, handle: Any) -> GpuInfo:
        name = self.query("name", i, "nvmlDeviceGetName", handle)
        uuid = self.query("uuid", i, "nvmlDeviceGetUUID", handle)
        pci = self.query("PCI info", i, "nvmlDeviceGetPciInfo_v3", handle) if hasattr(
            self.nvml, "nvmlDeviceGetPciInfo_v3") else self.query("PCI info", i, "nvmlDeviceGetPciInfo", handle)
        mem = self.memory(i, handle)
        cc = self.query("compute capability", i, "nvmlDeviceGetCudaComputeCapability", handle)
        arch = self.query("architecture", i, "nvmlDeviceGetArchitecture", handle)
        util = self.query("utilization", i, "nvmlDeviceGetUtilizationRates", handle)
        procs = self.processes(i, handle)
        mig_enabled, slices = self.mig(i, handle)
        reserved = getattr(mem, "reserved", None)
        return GpuInfo(
            index=i, name=_str(name) if name is not None else "unknown", uuid=_str(uuid) if uuid is not None else None,
            pci_bus_id=_str(pci.busId).upper() if pci is not None else None,
            memory_total_mib=_mib(getattr(mem, "total", None)), memory_used_mib=_mib(getattr(mem, "used", None)),
            memory_free_mib=_mib(getattr(mem, "free", None)), memory_reserved_mib=_mib(reserved, ceil=True),
            compute_capability=f"{cc[0]}.{cc[1]}" if cc is not None else None,
            architecture=ARCHITECTURES.get(arch) if arch is not None else None,
            utilization_pct=int(util.gpu) if util is not None else None,
            processes=(procs or [])[:MAX_PROCESSES_PER_GPU], processes_total=len(procs) if procs is not None else None,
            mig_enabled=mig_enabled, mig_slices=slices)

    def links(self, gpus: list[GpuInfo], handles: list[Any], remotes: list[list[str | None]]) -> dict:
        bus_to_index = {g.pci_bus_id: g.index for g in gpus if g.pci_bus_id}
        direct: dict[tuple[int, int], int] = {}
        switch = [0] * len(gpus)  # active links whose far end is not a GPU: an NVSwitch (or unknown)
        for a, ends in enumerate(remotes):
            for remote in ends:
                b = bus_to_index.get(remote) if remote else None
                if b is None or b == a:
                    switch[a] += 1
                else:
                    key = (min(a, b), max(a, b))
                    direct[key] = max(direct.get(key, 0), sum(1 for r in ends if r == remote))
        links = {}
        for a in range(len(gpus)):
            for b in range(a + 1, len(gpus)):
                level = self.query("PCIe topology", a, "nvmlDeviceGetTopologyCommonAncestor", handles[a], handles[b])
                pcie = PCIE_LEVELS.get(level) if level is not None else None
                count = direct.get((a, b), 0)
                if not count and switch[a] and switch[b]:
                    p2p = self.query("NVLink P2P status", a, "nvmlDeviceGetP2PStatus", handles[a], handles[b],
                                     P2P_CAPS_INDEX_NVLINK)
                    if p2p == P2P_STATUS_OK or p2p is None:
                        count = min(switch[a], switch[b])
                    if p2p is None:
                        self.warnings.append(Problem(code="nvlink_assumed", message=f"GPUs {a} and {b}: NVLink P2P "
                                                     "status unreadable; NVLink assumed since both have active links."))
                kind = "nvlink" if count else (pcie or "unknown")
                links[(a, b)] = GpuLink(a=a, b=b, kind=kind, nvlink_count=count, pcie_level=pcie)
        return links

    def run(self) -> NvmlHost:
        nvml = self.nvml
        nvml.nvmlInit()
        try:
            host = NvmlHost()
            driver = self.query("driver version", None, "nvmlSystemGetDriverVersion")
            host.driver_version = _str(driver) if driver is not None else None
            fn = "nvmlSystemGetCudaDriverVersion_v2" if hasattr(nvml, "nvmlSystemGetCudaDriverVersion_v2") \
                else "nvmlSystemGetCudaDriverVersion"
            cuda = self.query("CUDA driver version", None, fn)
            host.cuda_driver_version = f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
            host.gpus = [self.gpu(i, h) for i, h in enumerate(handles)]
            remotes = [self.nvlinks(i, h) for i, h in enumerate(handles)]
            host.links = self.links(host.gpus, handles, remotes)
        finally:
            try:
                nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutdown failure changes nothing we report
                pass
        expected_gaps = {"MIG mode", "MIG device count"}  # absent on GPUs without MIG: normal
        gaps = {what: idx for what, idx in self.not_supported.items() if what not in expected_gaps}
        if gaps:
            listed = "; ".join(f"{what} (GPU {', '.join(map(str, idx))})" for what, idx in gaps.items())
            self.warnings.append(Problem(code="nvml_not_supported", message=f"NVML does not support: {listed}; "
                                         "those fields are empty."))
        host.warnings = self.warnings
        return host


def _failure(exc: BaseException) -> Problem:
    if isinstance(exc, ImportError):
        return Problem(code="nvml_missing", message="nvidia-ml-py (pynvml) is not importable.",
                       fix="pip install nvidia-ml-py (a dependency of sglang-diffusion-mcp).")
    code = _code(exc)
    if code == ERR_LIBRARY_NOT_FOUND:
        return Problem(code="nvml_no_driver", message="The NVML library (libnvidia-ml.so) was not found: no NVIDIA "
                       "driver is installed or visible here.", fix="On a GPU host, install the NVIDIA driver or run "
                       "inside a container started with GPU access (--gpus all). Without GPUs, pass a hardware spec.")
    if code == ERR_DRIVER_NOT_LOADED:
        return Problem(code="nvml_driver_not_loaded", message="The NVIDIA driver is not loaded.",
                       fix="Load the driver (see `nvidia-smi`), or pass a hardware spec.")
    return Problem(code="nvml_failed", message=f"NVML failed: {type(exc).__name__}: {exc}.",
                   fix="Check `nvidia-smi`; nvidia-smi output is used instead where it works.")


def read(timeout_s: float, load: Callable[[], Any] = load_pynvml) -> tuple[NvmlHost | None, list[Problem]]:
    """Probe NVML in a worker thread; (None, warnings) if it is missing, fails or misses the deadline."""
    global _stuck
    if _stuck is not None and _stuck.is_alive():
        return None, [Problem(code="nvml_hung", message="An earlier NVML call has still not returned; NVML was "
                              "skipped.", fix="Check the GPU driver (dmesg, nvidia-smi); restart the server after.")]
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["host"] = _Probe(load()).run()
        except BaseException as exc:  # noqa: BLE001 - reported as a warning, never raised
            box["error"] = exc

    thread = threading.Thread(target=work, name="detect-gpus-nvml", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        _stuck = thread
        return None, [Problem(code="nvml_timeout", message=f"NVML did not answer within {timeout_s:g} s; the "
                              "driver may be hung.", fix="Check the driver (dmesg, nvidia-smi).")]
    if "error" in box:
        return None, [_failure(box["error"])]
    return box["host"], []
