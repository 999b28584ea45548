"""Hardware specs (`4xH100-80GB`) and detect_gpus results resolved to one hardware object."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sglang_diffusion_mcp.knowledge import loader
from sglang_diffusion_mcp.tools.detect_gpus import detect_gpus
from sglang_diffusion_mcp.tools.gpus.model import DetectGpusResult, GpuInfo
from sglang_diffusion_mcp.tools.hardware_spec import (
    EXAMPLES, GRAMMAR, _canonical, hardware_from_detection, parse_hardware_spec, resolve_hardware)
from sglang_diffusion_mcp.tools.problems import Problem, ToolInputError

GPUS = Path(__file__).parent / "fixtures" / "gpus"


def codes(hw) -> set[str]:
    return {w.code for w in hw.warnings}


@pytest.mark.parametrize(("spec", "count", "gpu", "interconnect", "cc"), [
    ("1xRTX4090", 1, "rtx-4090", "none", "8.9"),
    ("2xL40S", 2, "l40s", "pcie", "8.9"),
    ("4xH100-80GB", 4, "h100-sxm", "nvlink", "9.0"),
    ("8xH200", 8, "h200-sxm", "nvlink", "9.0"),
    ("4xH100-pcie", 4, "h100-pcie", "pcie", "9.0"),
    ("8xMI300X", 8, "mi300x", "xgmi", None),
    ("2xH100-94GB", 2, "h100-nvl", "nvlink", "9.0"),
    ("2xA100-40GB-pcie", 2, "a100-40gb-pcie", "pcie", "8.0"),
    ("1xRTXPRO6000", 1, "rtx-pro-6000-blackwell", "none", "12.0"),
    ("1xRTX6000Ada", 1, "rtx-6000-ada", "none", "8.9"),
    ("8xB200", 8, "b200", "nvlink", "10.0"),
    ("4xH200-nvl", 4, "h200-nvl", "nvlink", "9.0"),
])
def test_specs_resolve(spec, count, gpu, interconnect, cc):
    hw = parse_hardware_spec(spec)
    assert (hw.count, hw.gpu, hw.interconnect, hw.compute_capability, hw.origin) == (count, gpu, interconnect, cc, "spec")
    assert hw.input == spec and hw.total_memory_gb == pytest.approx(hw.memory_gb * count, abs=0.01)
    assert hw.entry().id == gpu


@pytest.mark.parametrize("spec", ["4xh100-80gb", "4XH100-80GB", " 4 x H100-80GB ", "4xH100_80GB", "4×H100-80GB"])
def test_spelling_is_forgiving(spec):
    assert parse_hardware_spec(spec).gpu == "h100-sxm"


def test_bare_name_takes_the_common_server_form_and_says_so():
    hw = parse_hardware_spec("4xH100")
    assert hw.gpu == "h100-sxm" and hw.all_nvlink and hw.spec == "4xH100-80GB-sxm"
    warning = next(w for w in hw.warnings if w.code == "hardware_assumed")
    assert "SXM with NVLink" in warning.message and "H100-80GB-pcie" in warning.fix and "H100-94GB-nvl" in warning.fix


def test_fully_written_spec_has_no_assumption_warning():
    assert "hardware_assumed" not in codes(parse_hardware_spec("4xH100-80GB-sxm"))
    assert "hardware_assumed" not in codes(parse_hardware_spec("2xL40S"))  # one form only: nothing assumed


def test_every_knowledge_gpu_round_trips_through_its_canonical_spec():
    for entry in loader.load("gpus"):
        hw = parse_hardware_spec(_canonical(2, entry))
        assert hw.gpu == entry.id, entry.id
        assert "hardware_assumed" not in codes(hw)
        assert hw.spec == _canonical(2, entry)


def test_knowledge_gpus_are_consistent():
    entries = loader.load("gpus")
    names = [n.casefold() for e in entries for n in e.nvml_names]
    assert len(names) == len(set(names)), "a reported name belongs to one entry only"
    for family in {e.family for e in entries}:
        assert sum(e.family_default for e in entries if e.family == family) == 1, family
    for e in entries:
        if e.memory_mib:
            assert e.memory_gb == pytest.approx(e.memory_mib / 1024, abs=0.6), e.id
    pro = next(e for e in entries if e.id == "rtx-pro-6000-blackwell")
    assert not any("ada" in n.lower() for n in pro.nvml_names)


def test_amd_resolves_but_is_not_supported():
    hw = parse_hardware_spec("8xMI300X")
    assert hw.vendor == "amd" and hw.supported is False and "gpu_not_supported" in codes(hw)


def test_consumer_cards_have_no_p2p():
    hw = parse_hardware_spec("2xRTX4090")
    assert hw.interconnect == "pcie" and not hw.pcie_p2p and "no_p2p" in codes(hw)


def test_nvl_beyond_a_bridge_is_mixed():
    hw = parse_hardware_spec("4xH100-nvl")
    assert hw.interconnect == "mixed" and not hw.all_nvlink and "nvlink_partial" in codes(hw)


@pytest.mark.parametrize("spec", ["H100", "x", "4x", "four H100", "4xH100-80GB-pcie-extra-words", ""])
def test_unparseable_specs_say_the_grammar(spec):
    with pytest.raises(ToolInputError) as err:
        parse_hardware_spec(spec)
    problem = err.value.problem
    assert problem.code in ("bad_hardware_spec", "unknown_gpu") and problem.flag == "hardware"
    if problem.code == "bad_hardware_spec":
        assert GRAMMAR in problem.message and all(e in problem.fix for e in EXAMPLES)


def test_missing_count_suggests_one():
    with pytest.raises(ToolInputError) as err:
        parse_hardware_spec("H100")
    assert "1xH100" in err.value.text


@pytest.mark.parametrize(("spec", "closest"), [("4xRTX6000", {"RTX6000Ada", "RTXPRO6000"}), ("2xH110", {"H100"}),
                                                ("1xL40SS", {"L40S"})])
def test_unknown_gpu_names_the_closest(spec, closest):
    with pytest.raises(ToolInputError) as err:
        parse_hardware_spec(spec)
    assert err.value.problem.code == "unknown_gpu"
    assert all(name in err.value.problem.fix.split("Known GPUs")[0] for name in closest)


@pytest.mark.parametrize(("spec", "code"), [("4xH100-40GB", "unknown_gpu_memory"), ("2xL40S-sxm", "unknown_gpu_form"),
                                            ("0xH100", "bad_gpu_count"), ("65xH100", "bad_gpu_count")])
def test_impossible_specs(spec, code):
    with pytest.raises(ToolInputError) as err:
        parse_hardware_spec(spec)
    assert err.value.problem.code == code and err.value.problem.fix


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_garbage_never_crashes(text):
    try:
        parse_hardware_spec(text)
    except ToolInputError:
        pass


# --- from detect_gpus

def test_from_detected_nvlink_host():
    hw = hardware_from_detection(detect_gpus(str(GPUS / "h200x4-nvlink")))
    assert (hw.origin, hw.count, hw.gpu, hw.interconnect, hw.all_nvlink) == ("detected", 4, "h200-sxm", "nvlink", True)
    assert hw.memory_gb == 140.4 and hw.gpu_indices == [0, 1, 2, 3] and hw.spec == "4xH200-141GB-sxm"


def test_from_detected_busy_host_counts_idle_gpus():
    detected = detect_gpus(str(GPUS / "h200x4-busy"))
    assert hardware_from_detection(detected).gpu_indices == [1, 3]
    assert hardware_from_detection(detected, use="all").count == 4


def test_from_detected_single_gpu():
    hw = hardware_from_detection(detect_gpus(str(GPUS / "h100x1")))
    assert (hw.count, hw.gpu, hw.interconnect, hw.compute_capability) == (1, "h100-sxm", "none", "9.0")


def test_nothing_detected_asks_for_a_spec():
    empty = DetectGpusResult(source="none", warnings=[Problem(code="nvml_no_driver", message="no driver here")])
    with pytest.raises(ToolInputError) as err:
        hardware_from_detection(empty)
    assert err.value.problem.code == "no_gpu_detected" and GRAMMAR in err.value.problem.fix
    assert "no driver here" in err.value.problem.message
    with pytest.raises(ToolInputError):
        resolve_hardware(None, detect=lambda: empty)


def test_mig_only_host_asks_for_a_spec():
    with pytest.raises(ToolInputError) as err:
        hardware_from_detection(detect_gpus(str(GPUS / "h100x1-mig")))
    assert "MIG" in err.value.problem.message


def test_unknown_detected_gpu_keeps_what_is_known():
    gpu = GpuInfo(index=0, name="NVIDIA Future GPU", memory_total_mib=200_000, compute_capability="11.0", idle=True)
    hw = hardware_from_detection(DetectGpusResult(source="nvml", gpu_count=1, gpus=[gpu]))
    assert hw.gpu is None and hw.compute_capability == "11.0" and hw.memory_gb == 195.31
    assert "unknown_gpu" in codes(hw)


def test_resolve_prefers_the_spec():
    detected = detect_gpus(str(GPUS / "h100x1"))
    assert resolve_hardware("2xL40S", detected=detected).gpu == "l40s"
    assert resolve_hardware(None, detected=detected).gpu == "h100-sxm"
