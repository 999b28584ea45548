"""The VRAM estimate against peaks SGLang's own CI measured (tests/fixtures/vram_cases, sglang 0.5.23)."""

from __future__ import annotations

import statistics

import pytest

from sglang_diffusion_mcp.tools.planning.estimate import estimate_vram

from vram_cases import load_cases  # noqa: E402  (tests/ helper)

CASES = load_cases()
HIGH_CONFIDENCE_TOLERANCE = 0.25
MEDIAN_TARGET = 0.20


def _error(case) -> float:
    est = estimate_vram(case["model"], case["workload"], case["plan"], case["gpu_memory_gb"])
    return (est.per_gpu_peak_gb - case["measured_gb"]) / case["measured_gb"]


def test_there_are_at_least_eight_measured_cases():
    assert len(CASES) >= 8
    assert {c["model"].family for c in CASES} >= {"wan2.1", "wan2.2", "flux.1", "flux.2", "qwen-image", "z-image"}


@pytest.mark.parametrize("case", [c for c in CASES if c["confidence"] == "high"], ids=lambda c: c["id"])
def test_high_confidence_cases_within_tolerance(case):
    assert abs(_error(case)) <= HIGH_CONFIDENCE_TOLERANCE


def test_median_error_over_all_cases(capsys):
    errors = {c["id"]: _error(c) for c in CASES}
    with capsys.disabled():
        print("\nVRAM estimate vs SGLang CI peaks (runtime peak reserved):")
        for case_id, err in errors.items():
            print(f"  {case_id:45s} {err * 100:+6.1f}%")
    median = statistics.median(abs(e) for e in errors.values())
    print(f"  median |error| {median * 100:.1f}%")
    assert median <= MEDIAN_TARGET
