"""nvidia-smi as a source: parse `nvidia-smi -q -x` and `nvidia-smi topo -m`, live or from a snapshot."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ..problems import Problem
from . import runner
from .model import MAX_PROCESSES_PER_GPU, GpuInfo, GpuLink, GpuProcess, MigSlice

QUERY_FILE = "nvidia-smi-q.xml"
TOPO_FILE = "nvidia-smi-topo.txt"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # topo -m underlines its header even when piped
_NUMBER = re.compile(r"-?\d+")
_TOPO_PCIE = {"PIX": "pix", "PXB": "pxb", "PHB": "phb", "NODE": "node", "SYS": "sys", "SOC": "sys"}


class SmiParseError(ValueError):
    """The nvidia-smi output is not what nvidia-smi writes."""


@dataclass
class SmiHost:
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    gpus: list[GpuInfo] = field(default_factory=list)
    links: dict[tuple[int, int], GpuLink] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)


def _text(node: ET.Element | None, path: str) -> str | None:
    found = node.find(path) if node is not None else None
    value = (found.text or "").strip() if found is not None else ""
    return None if value in ("", "N/A", "Not Found", "[N/A]") or value.startswith("[") else value


def _int(node: ET.Element | None, path: str) -> int | None:
    value = _text(node, path)
    match = _NUMBER.search(value) if value else None
    return int(match.group()) if match else None


def _mig_slices(gpu: ET.Element) -> list[MigSlice]:
    slices = []
    for i, dev in enumerate(gpu.findall("mig_devices/mig_device")):
        slices.append(MigSlice(
            index=_int(dev, "index") if _int(dev, "index") is not None else i,
            gpu_instance_id=_int(dev, "gpu_instance_id"), compute_instance_id=_int(dev, "compute_instance_id"),
            memory_total_mib=_int(dev, "fb_memory_usage/total"), memory_used_mib=_int(dev, "fb_memory_usage/used")))
    return slices


def _processes(gpu: ET.Element) -> list[GpuProcess]:
    procs = []
    for p in gpu.findall("processes/process_info"):
        kind = (_text(p, "type") or "C").upper()
        pid = _int(p, "pid")
        if "C" in kind and pid is not None:  # compute processes only; "G" is a display client
            procs.append(GpuProcess(pid=pid, used_memory_mib=_int(p, "used_memory"), name=_text(p, "process_name")))
    return procs


def parse_query_xml(text: str) -> SmiHost:
    """Parse `nvidia-smi -q -x`. GPUs are indexed in PCI bus order, as NVML and nvidia-smi number them."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SmiParseError(f"not valid XML ({exc})") from exc
    if root.tag != "nvidia_smi_log":
        raise SmiParseError(f"root element is <{root.tag}>, expected <nvidia_smi_log>")
    host = SmiHost(driver_version=_text(root, "driver_version"), cuda_driver_version=_text(root, "cuda_version"))
    nodes = sorted(root.findall("gpu"), key=lambda g: (g.get("id") or "").upper())
    for index, gpu in enumerate(nodes):
        procs = _processes(gpu)
        mig_enabled = (_text(gpu, "mig_mode/current_mig") or "").lower() == "enabled"
        info = GpuInfo(
            index=index, name=_text(gpu, "product_name") or "unknown", uuid=_text(gpu, "uuid"),
            pci_bus_id=(_text(gpu, "pci/pci_bus_id") or gpu.get("id") or "").upper() or None,
            memory_total_mib=_int(gpu, "fb_memory_usage/total"), memory_used_mib=_int(gpu, "fb_memory_usage/used"),
            memory_free_mib=_int(gpu, "fb_memory_usage/free"),
            memory_reserved_mib=_int(gpu, "fb_memory_usage/reserved"),
            architecture=_text(gpu, "product_architecture"), utilization_pct=_int(gpu, "utilization/gpu_util"),
            processes=procs[:MAX_PROCESSES_PER_GPU], processes_total=len(procs),
            mig_enabled=mig_enabled, mig_slices=_mig_slices(gpu) if mig_enabled else [])
        host.gpus.append(info)
    return host


def parse_topo(text: str, gpu_count: int) -> dict[tuple[int, int], GpuLink]:
    """Parse the GPU-to-GPU part of `nvidia-smi topo -m` (colour codes stripped; NIC rows ignored)."""
    lines = [ANSI.sub("", line) for line in text.splitlines()]
    links: dict[tuple[int, int], GpuLink] = {}
    for line in lines:
        cells = [c.strip() for c in line.split("\t")]
        row = re.fullmatch(r"GPU(\d+)", cells[0]) if cells else None
        if not row:
            continue
        a = int(row.group(1))
        for b, cell in enumerate(cells[1:1 + gpu_count]):
            if b <= a:
                continue
            nv = re.fullmatch(r"NV(\d+)", cell)
            if nv:
                links[(a, b)] = GpuLink(a=a, b=b, kind="nvlink", nvlink_count=int(nv.group(1)))
            elif cell in _TOPO_PCIE:
                links[(a, b)] = GpuLink(a=a, b=b, kind=_TOPO_PCIE[cell], pcie_level=_TOPO_PCIE[cell])
    return links


def _assemble(query_text: str, topo_text: str | None, where: str) -> SmiHost:
    host = parse_query_xml(query_text)
    if topo_text is None:
        if len(host.gpus) > 1:
            host.warnings.append(Problem(code="no_topology", message=f"No `nvidia-smi topo -m` output {where}; "
                                         "links between GPUs are unknown.",
                                         fix=f"Add the output of `nvidia-smi topo -m` as {TOPO_FILE}."))
        return host
    host.links = parse_topo(topo_text, len(host.gpus))
    missing = len(host.gpus) * (len(host.gpus) - 1) // 2 - len(host.links)
    if missing > 0:
        host.warnings.append(Problem(code="topology_incomplete", message=f"{missing} GPU pair(s) missing from the "
                                     f"`nvidia-smi topo -m` output {where}.", fix="Capture `nvidia-smi topo -m` again."))
    return host


def read_snapshot(directory: Path) -> SmiHost:
    """Replay captured outputs; raises FileNotFoundError / SmiParseError for the caller to report."""
    query = directory / QUERY_FILE
    topo = directory / TOPO_FILE
    topo_text = topo.read_text(encoding="utf-8", errors="replace") if topo.is_file() else None
    return _assemble(query.read_text(encoding="utf-8", errors="replace"), topo_text, f"in {directory}")


def read_live(timeout_s: float) -> tuple[SmiHost | None, list[Problem]]:
    """Run nvidia-smi; (None, warnings) when it is missing, hangs or fails."""
    q = runner.run(["nvidia-smi", "-q", "-x"], timeout_s)
    if not q.ok:
        return None, [Problem(code="nvidia_smi_failed", message=f"nvidia-smi gave no answer: {q.error}.",
                              fix="Check the NVIDIA driver (`nvidia-smi` should list the GPUs).")]
    try:
        topo = runner.run(["nvidia-smi", "topo", "-m"], timeout_s)
        host = _assemble(q.stdout, topo.stdout if topo.ok else None, "from this host")
    except SmiParseError as exc:
        return None, [Problem(code="nvidia_smi_unreadable", message=f"nvidia-smi -q -x output was unreadable: {exc}.",
                              fix="Check the driver installation; report this with the nvidia-smi version.")]
    if not topo.ok and len(host.gpus) > 1:
        host.warnings.append(Problem(code="nvidia_smi_topo_failed", message=f"nvidia-smi topo -m failed: {topo.error}."))
    if any(g.compute_capability is None for g in host.gpus):
        _fill_compute_capability(host, timeout_s)
    return host, []


def _fill_compute_capability(host: SmiHost, timeout_s: float) -> None:
    # -q -x has no compute capability; --query-gpu does (drivers >= 510).
    res = runner.run(["nvidia-smi", "--query-gpu=pci.bus_id,compute_cap", "--format=csv,noheader"], timeout_s)
    if not res.ok:
        return
    caps = {}
    for line in res.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and re.fullmatch(r"\d+\.\d+", parts[1]):
            caps[parts[0].upper()] = parts[1]
    for gpu in host.gpus:
        gpu.compute_capability = gpu.compute_capability or caps.get(gpu.pci_bus_id or "")
