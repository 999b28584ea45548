"""A stand-in for the pynvml module that replays an NVML capture (nvml_probe.json) from a real host.

Used by the tests and the benchmark (no GPU needed): put it in sys.modules["pynvml"]. Knobs let a test
fail one query, hang one query, or make GPUs busy. Never imported by the server.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

MIB = 1024 * 1024
nvmlMemory_v2 = 0x02000028
NVML_NVLINK_MAX_LINKS = 18
NVML_P2P_CAPS_INDEX_NVLINK = 2
NVML_P2P_STATUS_OK = 0
NVML_P2P_STATUS_NOT_SUPPORTED = 5


class NVMLError(Exception):
    value = 999

    def __init__(self, value: int | None = None):
        if value is not None:
            self.value = value
        super().__init__(self.value)

    def __str__(self) -> str:
        return {2: "Invalid Argument", 3: "Not Supported", 6: "Not Found", 9: "Driver Not Loaded",
                10: "Timeout", 12: "NVML Shared Library Not Found"}.get(self.value, "Unknown Error")


def _error(name: str, code: int) -> type[NVMLError]:
    return type(name, (NVMLError,), {"value": code})


NVMLError_InvalidArgument = _error("NVMLError_InvalidArgument", 2)
NVMLError_NotSupported = _error("NVMLError_NotSupported", 3)
NVMLError_NotFound = _error("NVMLError_NotFound", 6)
NVMLError_DriverNotLoaded = _error("NVMLError_DriverNotLoaded", 9)
NVMLError_Timeout = _error("NVMLError_Timeout", 10)
NVMLError_LibraryNotFound = _error("NVMLError_LibraryNotFound", 12)
NVMLError_Unknown = _error("NVMLError_Unknown", 999)


class ReplayNvml:
    """Module-like object: attribute access gives the pynvml functions and constants used by nvml_source."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    nvmlMemory_v2 = nvmlMemory_v2
    NVML_NVLINK_MAX_LINKS = NVML_NVLINK_MAX_LINKS
    NVML_P2P_CAPS_INDEX_NVLINK = NVML_P2P_CAPS_INDEX_NVLINK

    def __init__(self, probe: dict[str, Any]):
        self.probe = probe
        self.gpus = probe.get("gpus", [])
        self.pairs = {(p["a"], p["b"]): p for p in probe.get("pairs", [])}
        self.fail: dict[str, BaseException] = {}  # function name -> exception to raise
        self.hang: set[str] = set()  # function names that block until `release` is set
        self.release = threading.Event()
        self.init_error: BaseException | None = None
        self.calls: list[tuple[str, tuple]] = []  # every call, for the benchmark's bare loop
        self.busy: dict[int, dict[str, Any]] = {}  # gpu index -> {"used_mib", "util", "procs": [(pid, mib)]}
        self.remote_pci: dict[tuple[int, int], str] = {}  # (gpu, link) -> far end's PCI bus id (direct links)
        self.mig: dict[int, list[dict[str, Any]]] = {}  # gpu index -> slices {name, uuid, total_mib, used_mib, gi, ci}

    @classmethod
    def from_file(cls, path: str | Path) -> "ReplayNvml":
        return cls(json.loads(Path(path).read_text()))

    def _enter(self, name: str, args: tuple) -> None:
        self.calls.append((name, args))
        if name in self.hang:
            self.release.wait(timeout=30)
        if name in self.fail:
            raise self.fail[name]

    def __getattr__(self, name: str) -> Any:
        impl = getattr(type(self), "_" + name, None)
        if impl is None or not name.startswith("nvml"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._enter(name, args)
            return impl(self, *args, **kwargs)

        return call

    # --- system
    def _nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error

    def _nvmlShutdown(self) -> None:
        pass

    def _nvmlSystemGetDriverVersion(self) -> str:
        return self.probe["driver"]

    def _nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return self.probe["cuda_driver"]

    def _nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def _nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    # --- per GPU (handles are indices)
    def _slice(self, h: Any) -> dict[str, Any] | None:
        return self.mig[h[1]][h[2]] if isinstance(h, tuple) else None

    def _nvmlDeviceGetName(self, h: Any) -> str:
        s = self._slice(h)
        return s["name"] if s else self.gpus[h]["name"]

    def _nvmlDeviceGetUUID(self, h: Any) -> str:
        s = self._slice(h)
        return s["uuid"] if s else self.gpus[h]["uuid"]

    def _nvmlDeviceGetPciInfo_v3(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(**self.gpus[h]["pci"])

    def _nvmlDeviceGetMemoryInfo(self, h: Any, version: int | None = None) -> SimpleNamespace:
        s = self._slice(h)
        if s:
            return SimpleNamespace(total=s["total_mib"] * MIB, used=s["used_mib"] * MIB,
                                   free=(s["total_mib"] - s["used_mib"]) * MIB, reserved=0)
        mem = dict(self.gpus[h]["mem_v2" if version else "mem_v1"])
        used = self.busy.get(h, {}).get("used_mib")
        if used is not None:
            extra = used * MIB - (mem["used"] if version else 0)
            mem["used"] += extra
            mem["free"] -= extra
        return SimpleNamespace(**mem)

    def _nvmlDeviceGetCudaComputeCapability(self, h: int) -> tuple[int, int]:
        return tuple(self.gpus[h]["cc"])

    def _nvmlDeviceGetArchitecture(self, h: int) -> int:
        return self.gpus[h]["arch"]

    def _nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        util = dict(self.gpus[h]["util"])
        util["gpu"] = self.busy.get(h, {}).get("util", util["gpu"])
        return SimpleNamespace(**util)

    def _nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[SimpleNamespace]:
        procs = self.busy.get(h, {}).get("procs") or [
            (p["pid"], p["usedGpuMemory"] // MIB if p.get("usedGpuMemory") is not None else None)
            for p in self.gpus[h]["procs"]]
        return [SimpleNamespace(pid=pid, usedGpuMemory=mib * MIB if mib is not None else None) for pid, mib in procs]

    def _nvmlDeviceGetMigMode(self, h: int) -> list[int]:
        return [1, 1] if h in self.mig else list(self.gpus[h]["mig"])

    def _nvmlDeviceGetMaxMigDeviceCount(self, h: int) -> int:
        return 7 if h in self.mig else 0

    def _nvmlDeviceGetMigDeviceHandleByIndex(self, h: int, j: int) -> tuple:
        if j >= len(self.mig.get(h, [])):
            raise NVMLError_NotFound()
        return ("mig", h, j)

    def _nvmlDeviceGetGpuInstanceId(self, h: tuple) -> int:
        return self.mig[h[1]][h[2]]["gi"]

    def _nvmlDeviceGetComputeInstanceId(self, h: tuple) -> int:
        return self.mig[h[1]][h[2]]["ci"]

    def _nvmlDeviceGetNvLinkState(self, h: int, link: int) -> int:
        links = self.gpus[h]["nvlinks"]
        if link >= len(links):
            raise NVMLError_InvalidArgument()
        entry = links[link]
        if "error" in entry:
            raise NVMLError_NotSupported() if entry["error"] == "NVMLError_NotSupported" else NVMLError_Unknown()
        return entry["state"]

    def _nvmlDeviceGetNvLinkRemotePciInfo(self, h: int, link: int) -> SimpleNamespace:
        if (h, link) in self.remote_pci:
            return SimpleNamespace(busId=self.remote_pci[(h, link)])
        raise NVMLError_NotSupported()  # not in the capture: the far end is treated as a switch

    def _nvmlDeviceGetTopologyCommonAncestor(self, a: int, b: int) -> int:
        return self.pairs[(min(a, b), max(a, b))]["common_ancestor"]

    def _nvmlDeviceGetP2PStatus(self, a: int, b: int, index: int) -> int:
        if index != NVML_P2P_CAPS_INDEX_NVLINK:
            raise NVMLError_InvalidArgument()
        return self.pairs[(min(a, b), max(a, b))]["p2p_nvlink"]
