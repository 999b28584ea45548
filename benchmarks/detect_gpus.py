"""detect_gpus overhead against a bare loop of the same NVML queries, and snapshot replay of the 4xH200 capture.

Targets: the tool adds under 50 ms to NVML's own time; replaying the 4xH200 snapshot takes under 100 ms.
On a GPU host the live NVML is used; elsewhere (or with --fake) the NVML capture of the 4xH200 host is
replayed through the stand-in pynvml module, so the ratio then measures the tool's own work.

Run: python benchmarks/detect_gpus.py [--runs 30] [--fake]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from sglang_diffusion_mcp.tools.detect_gpus import detect_gpus
from sglang_diffusion_mcp.tools.gpus import nvml_replay, runner

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "gpus"
H200 = FIXTURES / "h200x4-nvlink"


def bare_nvml_loop(nvml) -> int:
    """The same queries detect_gpus makes, with nothing around them. Returns the number of NVML calls."""
    calls = 0

    def q(fn, *args, **kwargs):
        nonlocal calls
        calls += 1
        try:
            return getattr(nvml, fn)(*args, **kwargs)
        except nvml.NVMLError:
            return None

    q("nvmlInit")
    q("nvmlSystemGetDriverVersion")
    q("nvmlSystemGetCudaDriverVersion_v2")
    handles = [q("nvmlDeviceGetHandleByIndex", i) for i in range(q("nvmlDeviceGetCount"))]
    for h in handles:
        for fn in ("nvmlDeviceGetName", "nvmlDeviceGetUUID", "nvmlDeviceGetPciInfo_v3"):
            q(fn, h)
        q("nvmlDeviceGetMemoryInfo", h, version=nvml.nvmlMemory_v2)
        for fn in ("nvmlDeviceGetCudaComputeCapability", "nvmlDeviceGetArchitecture", "nvmlDeviceGetUtilizationRates",
                   "nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetMigMode"):
            q(fn, h)
    for h in handles:
        for link in range(int(nvml.NVML_NVLINK_MAX_LINKS)):
            state = q("nvmlDeviceGetNvLinkState", h, link)
            if state is None:
                break
            if state == 1:
                q("nvmlDeviceGetNvLinkRemotePciInfo", h, link)
    for a in range(len(handles)):
        for b in range(a + 1, len(handles)):
            q("nvmlDeviceGetTopologyCommonAncestor", handles[a], handles[b])
            q("nvmlDeviceGetP2PStatus", handles[a], handles[b], 2)
    q("nvmlShutdown")
    return calls


def pick_nvml(force_fake: bool):
    if not force_fake:
        try:
            import pynvml

            pynvml.nvmlInit()
            pynvml.nvmlShutdown()
            return pynvml, "live NVML"
        except Exception:  # noqa: BLE001 - no GPU here: replay the capture
            pass
    fake = nvml_replay.ReplayNvml.from_file(H200 / "nvml_probe.json")
    sys.modules["pynvml"] = fake
    runner.which = lambda name: None  # keep the host's amd-smi/nvidia-smi out of a fake run
    return fake, "replayed 4xH200 NVML capture (no GPU here)"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--fake", action="store_true", help="replay the capture even on a GPU host")
    args = parser.parse_args()
    nvml, label = pick_nvml(args.fake)

    detect_gpus()  # warm: imports, knowledge base load
    bare_nvml_loop(nvml)
    if isinstance(nvml, nvml_replay.ReplayNvml):
        nvml.calls.clear()
        detect_gpus()
        tool_calls = len(nvml.calls)
        print(f"NVML calls: tool {tool_calls}, bare loop {bare_nvml_loop(nvml)}")
    tool, bare = [], []
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        bare.append(timed(lambda: bare_nvml_loop(nvml)))
        tool.append(timed(detect_gpus))
    t, b = statistics.median(tool), statistics.median(bare)
    print(f"[{label}] detect_gpus median {t:.2f} ms vs bare NVML loop {b:.2f} ms: "
          f"ratio {t / b:.2f}x, tool adds {t - b:.2f} ms (target < 50 ms) "
          f"[tool p10-p90 {sorted(tool)[len(tool) // 10]:.2f}-{sorted(tool)[len(tool) * 9 // 10]:.2f} ms]")

    xml_text = (H200 / "nvidia-smi-q.xml").read_text()
    snap, parse = [], []
    detect_gpus(str(H200))
    for _ in range(args.runs):
        parse.append(timed(lambda: ET.fromstring((H200 / "nvidia-smi-q.xml").read_text())))
        snap.append(timed(lambda: detect_gpus(str(H200))))
    s, p = statistics.median(snap), statistics.median(parse)
    print(f"snapshot replay of 4xH200 ({len(xml_text) // 1024} KiB XML): median {s:.2f} ms (target < 100 ms); "
          f"{s / p:.2f}x a bare read+XML parse ({p:.2f} ms)")


if __name__ == "__main__":
    main()
