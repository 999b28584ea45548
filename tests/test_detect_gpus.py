"""detect_gpus against replayed real captures: a fake NVML (pynvml replaced), nvidia-smi output, snapshots."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from sglang_diffusion_mcp.tools import detect_gpus as detect_module
from sglang_diffusion_mcp.tools.detect_gpus import detect_gpus
from sglang_diffusion_mcp.tools.gpus import nvml_replay, nvml_source, runner, smi_source
from sglang_diffusion_mcp.tools.gpus.matching import match_gpu
from sglang_diffusion_mcp.tools.gpus.runner import CommandResult
from sglang_diffusion_mcp.tools.problems import ToolInputError

GPUS = Path(__file__).parent / "fixtures" / "gpus"
H200 = GPUS / "h200x4-nvlink"
H100 = GPUS / "h100x1"
BUSY = GPUS / "h200x4-busy"
REAL_RUN, REAL_WHICH = runner.run, runner.which


def codes(result) -> set[str]:
    return {w.code for w in result.warnings}


@pytest.fixture(autouse=True)
def quiet_host(monkeypatch):
    """No real driver, nvidia-smi or amd-smi leaks in; each test fakes what it needs."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(runner, "which", lambda name: None)
    monkeypatch.setattr(runner, "run", lambda argv, timeout_s: CommandResult(argv, error=f"{argv[0]} is not on PATH"))
    monkeypatch.setattr(nvml_source, "_stuck", None)
    yield


def use_nvml(monkeypatch, folder: Path) -> nvml_replay.ReplayNvml:
    fake = nvml_replay.ReplayNvml.from_file(folder / "nvml_probe.json")
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake


def no_driver(monkeypatch) -> None:
    fake = nvml_replay.ReplayNvml({"gpus": []})
    fake.init_error = nvml_replay.NVMLError_LibraryNotFound()
    monkeypatch.setitem(sys.modules, "pynvml", fake)


def fake_smi(monkeypatch, folder: Path, caps: str = "9.0") -> list[list[str]]:
    """nvidia-smi on PATH, answering with a capture."""
    seen: list[list[str]] = []

    def run(argv, timeout_s):
        seen.append(argv)
        if argv[:3] == ["nvidia-smi", "-q", "-x"]:
            return CommandResult(argv, 0, (folder / "nvidia-smi-q.xml").read_text())
        if argv[:3] == ["nvidia-smi", "topo", "-m"]:
            return CommandResult(argv, 0, (folder / "nvidia-smi-topo.txt").read_text())
        if argv[0] == "nvidia-smi" and argv[1].startswith("--query-gpu"):
            lines = [f"{g.pci_bus_id}, {caps}" for g in smi_source.parse_query_xml(
                (folder / "nvidia-smi-q.xml").read_text()).gpus]
            return CommandResult(argv, 0, "\n".join(lines))
        return CommandResult(argv, error="unexpected command")

    monkeypatch.setattr(runner, "which", lambda name: f"/usr/bin/{name}" if name == "nvidia-smi" else None)
    monkeypatch.setattr(runner, "run", run)
    return seen


# --- live NVML, replayed from the real probes

def test_h200_nvlink_host_from_nvml(monkeypatch):
    use_nvml(monkeypatch, H200)
    result = detect_gpus()
    assert result.source == "nvml"
    assert (result.driver_version, result.cuda_driver_version) == ("580.159.04", "13.0")
    assert result.gpu_count == 4 and [g.index for g in result.gpus] == [0, 1, 2, 3]
    assert len(result.links) == 6
    assert all(link.kind == "nvlink" and link.nvlink_count == 18 for link in result.links)
    assert {(link.a, link.b) for link in result.links} == {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)}
    assert result.all_nvlink
    for gpu in result.gpus:
        assert (gpu.name, gpu.kb_gpu, gpu.kb_match) == ("NVIDIA H200", "h200-sxm", "exact")
        assert (gpu.compute_capability, gpu.architecture) == ("9.0", "Hopper")
        assert gpu.idle and gpu.processes_total == 0
    assert result.idle_gpus == [0, 1, 2, 3]
    assert result.recommended_env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    assert not codes(result) - {"nvml_not_supported"}


@pytest.mark.parametrize("folder", [H200, H100], ids=["h200x4", "h100x1"])
def test_nvml_memory_equals_nvidia_smi(monkeypatch, folder):
    """v2 memory API: driver-reserved memory is not 'used', so the numbers are nvidia-smi's."""
    use_nvml(monkeypatch, folder)
    live = detect_gpus()
    smi = smi_source.parse_query_xml((folder / "nvidia-smi-q.xml").read_text())
    for mine, theirs in zip(live.gpus, smi.gpus, strict=True):
        assert (mine.uuid, mine.pci_bus_id) == (theirs.uuid, theirs.pci_bus_id)
        assert (mine.memory_total_mib, mine.memory_used_mib, mine.memory_free_mib, mine.memory_reserved_mib) == (
            theirs.memory_total_mib, theirs.memory_used_mib, theirs.memory_free_mib, theirs.memory_reserved_mib)


def test_h100_host_has_one_gpu_and_no_links(monkeypatch):
    use_nvml(monkeypatch, H100)
    result = detect_gpus()
    assert result.source == "nvml" and result.gpu_count == 1
    assert result.links == [] and not result.all_nvlink
    gpu = result.gpus[0]
    assert (gpu.name, gpu.kb_gpu, gpu.memory_total_mib, gpu.memory_total_gb) == (
        "NVIDIA H100 80GB HBM3", "h100-sxm", 81559, 79.65)
    assert result.recommended_env["CUDA_VISIBLE_DEVICES"] == "0"
    assert not result.warnings  # no NVLink on this GPU is normal, not worth a warning


def test_nvlink_bridged_pairs_are_counted_per_pair(monkeypatch):
    """Synthesized from the H200 probe: two bridged pairs (4 direct links each), PCIe between the pairs."""
    fake = use_nvml(monkeypatch, H200)
    bus = [g["pci"]["busId"] for g in fake.gpus]
    for g in fake.gpus:
        g["nvlinks"] = [{"link": k, "state": 1, "version": 4} for k in range(4)]
    for a, b in ((0, 1), (2, 3)):
        for k in range(4):
            fake.remote_pci[(a, k)], fake.remote_pci[(b, k)] = bus[b], bus[a]
    for (a, b), pair in fake.pairs.items():
        bridged = (a, b) in ((0, 1), (2, 3))
        pair["p2p_nvlink"] = 0 if bridged else 5
        pair["common_ancestor"] = 20 if bridged else 50
    result = detect_gpus()
    got = {(l.a, l.b): (l.kind, l.nvlink_count, l.pcie_level) for l in result.links}
    assert got[(0, 1)] == ("nvlink", 4, "pxb") and got[(2, 3)] == ("nvlink", 4, "pxb")
    assert got[(0, 2)] == ("sys", 0, "sys") and got[(1, 3)] == ("sys", 0, "sys")
    assert not result.all_nvlink


def test_nvml_busy_gpus_are_not_idle(monkeypatch):
    fake = use_nvml(monkeypatch, H200)
    fake.busy = {0: {"used_mib": 70312, "util": 97, "procs": [(48213, 70290)]},
                 2: {"used_mib": 2048, "util": 0, "procs": [(51877, 2026)]}}
    result = detect_gpus()
    assert result.idle_gpus == [1, 3]
    assert result.recommended_env["CUDA_VISIBLE_DEVICES"] == "1,3"
    busy = result.gpus[0]
    assert not busy.idle and busy.memory_used_mib == 70312 and busy.utilization_pct == 97
    assert [(p.pid, p.used_memory_mib) for p in busy.processes] == [(48213, 70290)]
    assert any("compute process" in r for r in busy.busy_reasons) and any("97%" in r for r in busy.busy_reasons)


def test_all_gpus_busy_leaves_cuda_visible_devices_unset(monkeypatch):
    fake = use_nvml(monkeypatch, H100)
    fake.busy = {0: {"used_mib": 500, "util": 50, "procs": [(7, 480)]}}
    result = detect_gpus()
    assert result.idle_gpus == [] and "CUDA_VISIBLE_DEVICES" not in result.recommended_env
    assert "no_idle_gpu" in codes(result)


def test_existing_cuda_visible_devices_is_left_alone(monkeypatch):
    use_nvml(monkeypatch, H200)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    result = detect_gpus()
    assert result.recommended_env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert result.cuda_visible_devices == "2,3" and "cuda_visible_devices_set" in codes(result)


def test_not_supported_query_leaves_only_that_field_empty(monkeypatch):
    fake = use_nvml(monkeypatch, H200)
    fake.fail["nvmlDeviceGetUtilizationRates"] = nvml_replay.NVMLError_NotSupported()
    result = detect_gpus()
    assert all(g.utilization_pct is None for g in result.gpus)
    assert all(g.memory_total_mib == 143771 and g.compute_capability == "9.0" for g in result.gpus)
    assert result.idle_gpus == [0, 1, 2, 3] and result.all_nvlink  # memory and processes still decide
    warning = next(w for w in result.warnings if w.code == "nvml_not_supported")
    assert "utilization" in warning.message


def test_failing_query_warns_and_keeps_the_rest(monkeypatch):
    fake = use_nvml(monkeypatch, H100)
    fake.fail["nvmlDeviceGetUUID"] = nvml_replay.NVMLError_Unknown()
    fake.fail["nvmlDeviceGetComputeRunningProcesses"] = nvml_replay.NVMLError_Unknown()
    result = detect_gpus()
    gpu = result.gpus[0]
    assert gpu.uuid is None and gpu.processes_total is None and gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.idle  # memory and utilization still say idle
    assert sum(w.code == "nvml_query_failed" for w in result.warnings) == 2


def test_mig_slices_are_listed_not_counted(monkeypatch):
    fake = use_nvml(monkeypatch, H100)
    fake.mig = {0: [{"name": "NVIDIA H100 80GB HBM3 MIG 3g.40gb", "uuid": "MIG-aaa", "total_mib": 40192,
                     "used_mib": 13, "gi": 1, "ci": 0},
                    {"name": "NVIDIA H100 80GB HBM3 MIG 2g.20gb", "uuid": "MIG-bbb", "total_mib": 19968,
                     "used_mib": 0, "gi": 2, "ci": 0}]}
    result = detect_gpus()
    assert result.gpu_count == 0 and result.mig_slice_count == 2
    gpu = result.gpus[0]
    assert gpu.mig_enabled and not gpu.idle and [s.uuid for s in gpu.mig_slices] == ["MIG-aaa", "MIG-bbb"]
    assert gpu.mig_slices[0].memory_total_mib == 40192
    assert result.idle_gpus == [] and "mig_enabled" in codes(result)


# --- failures: hung driver, no driver, AMD

def test_hung_nvml_gives_a_warning_and_falls_back(monkeypatch):
    fake = use_nvml(monkeypatch, H200)
    fake.hang.add("nvmlDeviceGetCount")
    monkeypatch.setattr(detect_module, "NVML_TIMEOUT_S", 0.2)
    fake_smi(monkeypatch, H200)
    try:
        first = detect_gpus()
        assert first.source == "nvidia-smi" and first.gpu_count == 4 and "nvml_timeout" in codes(first)
        second = detect_gpus()  # the stuck probe is not piled onto
        assert second.source == "nvidia-smi" and "nvml_hung" in codes(second)
        assert fake.calls.count(("nvmlDeviceGetCount", ())) == 1
    finally:
        fake.release.set()
        nvml_source._stuck.join(5)


def test_hung_nvidia_smi_is_killed_after_the_timeout(tmp_path, monkeypatch):
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\nsleep 30\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(runner, "run", REAL_RUN)
    monkeypatch.setattr(runner, "which", REAL_WHICH)
    result = runner.run(["nvidia-smi", "-q", "-x"], timeout_s=0.3)
    assert not result.ok and "did not finish" in result.error


def test_no_driver_and_no_nvidia_smi_is_a_normal_answer(monkeypatch):
    no_driver(monkeypatch)
    result = detect_gpus()
    assert result.source == "none" and result.gpus == [] and result.gpu_count == 0
    assert {"nvml_no_driver", "nvidia_smi_failed", "no_nvidia_gpu"} <= codes(result)
    assert "hardware spec" in next(w for w in result.warnings if w.code == "no_nvidia_gpu").fix
    assert result.recommended_env == {}


def test_pynvml_missing_is_a_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    result = detect_gpus()
    assert result.source == "none" and "nvml_missing" in codes(result)


def test_nvidia_smi_fallback_when_nvml_is_missing(monkeypatch):
    no_driver(monkeypatch)
    seen = fake_smi(monkeypatch, H200)
    result = detect_gpus()
    assert result.source == "nvidia-smi" and result.gpu_count == 4
    assert all(link.kind == "nvlink" and link.nvlink_count == 18 for link in result.links) and len(result.links) == 6
    assert all(g.compute_capability == "9.0" for g in result.gpus)
    assert ["nvidia-smi", "-q", "-x"] in seen and ["nvidia-smi", "topo", "-m"] in seen


def test_amd_gpus_are_seen_but_not_analysed(monkeypatch):
    no_driver(monkeypatch)
    listing = json.dumps([{"gpu": i, "bdf": f"0000:{i:02x}:00.0", "uuid": f"uuid-{i}"} for i in range(8)])
    monkeypatch.setattr(runner, "which", lambda name: "/opt/rocm/bin/amd-smi" if name == "amd-smi" else None)
    monkeypatch.setattr(runner, "run", lambda argv, timeout_s: CommandResult(argv, 0, listing) if argv[0] == "amd-smi"
                        else CommandResult(argv, error=f"{argv[0]} is not on PATH"))
    result = detect_gpus()
    assert result.source == "none" and result.amd_gpus_seen == 8
    warning = next(w for w in result.warnings if w.code == "amd_gpus_not_analysed")
    assert "8 AMD GPU" in warning.message and "not analysed" in warning.message


# --- snapshot replay

def test_snapshot_h200_matches_live_nvml(monkeypatch):
    use_nvml(monkeypatch, H200)
    live = detect_gpus()
    snap = detect_gpus(str(H200))
    assert snap.source == "snapshot" and snap.snapshot_dir == str(H200)
    assert [(g.name, g.uuid, g.pci_bus_id, g.memory_total_mib, g.kb_gpu, g.compute_capability) for g in snap.gpus] == \
        [(g.name, g.uuid, g.pci_bus_id, g.memory_total_mib, g.kb_gpu, g.compute_capability) for g in live.gpus]
    assert [(l.a, l.b, l.kind, l.nvlink_count) for l in snap.links] == \
        [(l.a, l.b, l.kind, l.nvlink_count) for l in live.links]
    assert snap.all_nvlink and snap.idle_gpus == [0, 1, 2, 3]


def test_snapshot_h100(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # this machine's env does not apply to a snapshot
    snap = detect_gpus(str(H100))
    assert snap.gpu_count == 1 and snap.links == [] and snap.gpus[0].kb_gpu == "h100-sxm"
    assert snap.recommended_env["CUDA_VISIBLE_DEVICES"] == "0" and snap.cuda_visible_devices is None


def test_snapshot_of_the_2xh200_host_matches_what_live_nvml_said_there():
    """The capture and the live NVML answer both come from the same lent 2xH200 host."""
    host = GPUS / "h200x2-nvlink"
    live = json.loads((host / "live-check.json").read_text())["detect_gpus"]
    snap = detect_gpus(str(host))
    assert [(g.name, g.uuid, g.memory_total_mib, g.memory_used_mib, g.kb_gpu) for g in snap.gpus] == \
        [(g["name"], g["uuid"], g["memory_total_mib"], g["memory_used_mib"], g["kb_gpu"]) for g in live["gpus"]]
    assert [(l.a, l.b, l.kind, l.nvlink_count) for l in snap.links] == [(0, 1, "nvlink", 18)]
    assert snap.idle_gpus == live["idle_gpus"] == [0, 1]


def test_snapshot_of_busy_host():
    snap = detect_gpus(str(BUSY))
    assert snap.idle_gpus == [1, 3]
    gpu0, gpu2, gpu3 = snap.gpus[0], snap.gpus[2], snap.gpus[3]
    assert [(p.pid, p.used_memory_mib, p.name) for p in gpu0.processes] == [(48213, 70290, "/usr/bin/python3")]
    assert gpu0.utilization_pct == 97 and not gpu0.idle
    assert not gpu2.idle and gpu2.processes_total == 1 and gpu2.utilization_pct == 0
    assert gpu3.idle and gpu3.processes_total == 0  # a graphics-only client is not a compute process
    assert snap.recommended_env["CUDA_VISIBLE_DEVICES"] == "1,3"


def test_snapshot_with_mig():
    snap = detect_gpus(str(GPUS / "h100x1-mig"))
    assert snap.gpu_count == 0 and snap.mig_slice_count == 2
    assert [(s.gpu_instance_id, s.memory_total_mib) for s in snap.gpus[0].mig_slices] == [(1, 40192), (2, 19968)]


def test_snapshot_without_topology_marks_links_unknown(tmp_path):
    (tmp_path / "nvidia-smi-q.xml").write_text((H200 / "nvidia-smi-q.xml").read_text())
    snap = detect_gpus(str(tmp_path))
    assert len(snap.links) == 6 and all(l.kind == "unknown" for l in snap.links) and not snap.all_nvlink
    assert "no_topology" in codes(snap)


@pytest.mark.parametrize(("setup", "code"), [
    (lambda d: d / "missing", "snapshot_not_found"),
    (lambda d: d, "snapshot_incomplete"),
    (lambda d: (d / "nvidia-smi-q.xml").write_text("<html>not it</html>") and d, "bad_snapshot"),
    (lambda d: (d / "nvidia-smi-q.xml").write_text("\x00garbage<<<") and d, "bad_snapshot"),
])
def test_bad_snapshots_are_tool_errors(tmp_path, setup, code):
    with pytest.raises(ToolInputError) as err:
        detect_gpus(str(setup(tmp_path)))
    assert err.value.problem.code == code and "nvidia-smi -q -x" in err.value.problem.fix


def test_topology_parser_strips_colour_and_ignores_nics():
    text = ("\t\x1b[4mGPU0\tGPU1\tGPU2\tNIC0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\x1b[0m\n"
            "GPU0\t X \tNV12\tSYS\tPIX\t0-31\t0\t\tN/A\n"
            "GPU1\tNV12\t X \tPXB\tNODE\t0-31\t0\t\tN/A\n"
            "GPU2\tSYS\tPXB\t X \tSYS\t32-63\t1\t\tN/A\n"
            "NIC0\tPIX\tNODE\tSYS\t X \n")
    links = smi_source.parse_topo(text, 3)
    assert {k: (v.kind, v.nvlink_count) for k, v in links.items()} == {
        (0, 1): ("nvlink", 12), (0, 2): ("sys", 0), (1, 2): ("pxb", 0)}


# --- matching to the knowledge base

@pytest.mark.parametrize(("name", "memory", "expected"), [
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", 97887, "rtx-pro-6000-blackwell"),
    ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", 97887, "rtx-pro-6000-blackwell"),
    ("NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", 97887, "rtx-pro-6000-blackwell"),
    ("NVIDIA RTX PRO 6000 Blackwell DC Edition", 97887, "rtx-pro-6000-blackwell"),  # unlisted: by tokens
    ("NVIDIA RTX 6000 Ada Generation", 49140, "rtx-6000-ada"),
    ("Quadro RTX 6000", 24576, None),
    ("NVIDIA H100 80GB HBM3", 81559, "h100-sxm"),
    ("NVIDIA H100 PCIe", 81559, "h100-pcie"),
    ("NVIDIA H100 NVL", 95830, "h100-nvl"),
    ("NVIDIA H200", 143771, "h200-sxm"),
    ("NVIDIA H200 NVL", 143771, "h200-nvl"),
    ("NVIDIA A100-SXM4-40GB", 40960, "a100-40gb-sxm"),
    ("NVIDIA A100 PCIe", 40960, "a100-40gb-pcie"),  # unlisted: PCIe from the name, size from memory
    ("NVIDIA A100 PCIe", 81920, "a100-80gb-pcie"),
    ("NVIDIA L40", 46068, None),
    ("NVIDIA GeForce RTX 4090", 24564, "rtx-4090"),
    ("NVIDIA GeForce RTX 4090 D", 24564, None),
    ("Tesla T4", 15360, "t4"),
])
def test_names_match_the_right_knowledge_entry(name, memory, expected):
    entry, _ = match_gpu(name, memory)
    assert (entry.id if entry else None) == expected


# --- through the MCP server

@pytest.mark.anyio
async def test_detect_gpus_over_mcp():
    from mcp import Client

    from sglang_diffusion_mcp.server.app import build_server

    async with Client(build_server()) as client:
        ok = await client.call_tool("detect_gpus", {"snapshot_dir": str(H200)})
        bad = await client.call_tool("detect_gpus", {"snapshot_dir": "/nonexistent/snapshot"})
    assert not ok.is_error and ok.structured_content["all_nvlink"] is True
    assert len(ok.structured_content["links"]) == 6
    assert bad.is_error and "[snapshot_not_found]" in bad.content[0].text and "Fix:" in bad.content[0].text
