"""On a real GPU host: live detect_gpus (NVML) next to nvidia-smi, as JSON, with every disagreement listed.

Needs only this package (and the driver). Run: python benchmarks/detect_gpus_live_check.py > live-check.json
Exit status 1 when NVML and nvidia-smi disagree on a field both report.
"""

from __future__ import annotations

import json
import subprocess
import sys

from sglang_diffusion_mcp.tools.detect_gpus import detect_gpus
from sglang_diffusion_mcp.tools.gpus.smi_source import parse_query_xml, parse_topo

QUERY = "index,name,uuid,pci.bus_id,memory.total,memory.used,memory.free,utilization.gpu,compute_cap,driver_version"


def smi(*args: str) -> str:
    return subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=60, check=True).stdout


def raw_nvml() -> dict:
    """Memory v1 vs v2 and the NVLink view, straight from pynvml, to show what the tool builds on."""
    import pynvml

    pynvml.nvmlInit()
    try:
        out = []
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        for h in handles:
            v1 = pynvml.nvmlDeviceGetMemoryInfo(h)
            v2 = pynvml.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2)
            active = 0
            for link in range(int(pynvml.NVML_NVLINK_MAX_LINKS)):
                try:
                    active += pynvml.nvmlDeviceGetNvLinkState(h, link) == 1
                except pynvml.NVMLError:
                    break
            out.append({"mem_v1": {"total": v1.total, "used": v1.used, "free": v1.free},
                        "mem_v2": {"total": v2.total, "used": v2.used, "free": v2.free, "reserved": v2.reserved},
                        "active_nvlinks": active})
        return {"gpus": out}
    finally:
        pynvml.nvmlShutdown()


def main() -> int:
    result = detect_gpus()
    rows = [[c.strip() for c in line.split(",")] for line in smi(f"--query-gpu={QUERY}", "--format=csv,noheader,nounits")
            .splitlines() if line.strip()]
    xml_gpus = parse_query_xml(smi("-q", "-x")).gpus
    topo_text = smi("topo", "-m")
    topo = parse_topo(topo_text, len(rows))
    diffs = []
    for gpu, row, xml_gpu in zip(result.gpus, rows, xml_gpus):
        theirs = {"name": row[1], "uuid": row[2], "pci_bus_id": row[3].upper(), "memory_total_mib": int(row[4]),
                  "memory_used_mib": int(row[5]), "memory_free_mib": int(row[6]),
                  "compute_capability": row[8], "memory_reserved_mib": xml_gpu.memory_reserved_mib}
        for key, value in theirs.items():
            mine = getattr(gpu, key)
            if mine is not None and value is not None and mine != value:
                diffs.append({"gpu": gpu.index, "field": key, "nvml": mine, "nvidia_smi": value})
    for link in result.links:
        t = topo.get((link.a, link.b))
        if t is not None and (t.kind, t.nvlink_count) != (link.kind, link.nvlink_count):
            diffs.append({"pair": [link.a, link.b], "nvml": [link.kind, link.nvlink_count],
                          "nvidia_smi": [t.kind, t.nvlink_count]})
    report = {
        "detect_gpus": result.model_dump(mode="json"),
        "nvidia_smi": {"query_gpu": rows, "topo_m": topo_text.splitlines(),
                       "links": [[a, b, v.kind, v.nvlink_count] for (a, b), v in sorted(topo.items())]},
        "raw_nvml": raw_nvml() if result.source == "nvml" else None,
        "disagreements": diffs,
    }
    json.dump(report, sys.stdout, indent=1)
    print()
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
