"""compare_perf and the perf-dump parser, against SGLang's own compare_perf.py output (golden files)."""

from __future__ import annotations

import builtins
import json
import random
import re
import shutil
from pathlib import Path

import pytest

from sglang_diffusion_mcp.tools import compare_perf as cp
from sglang_diffusion_mcp.tools.compare_perf import compare_perf
from sglang_diffusion_mcp.tools.perf_dump import load_perf_dump, parse_perf_dump
from sglang_diffusion_mcp.tools.problems import ToolInputError

PERF = Path(__file__).parent / "fixtures" / "perf"
GOLDEN_CASES = {
    "flux-0.5.9": ["flux-0.5.9-baseline.json", "flux-0.5.9-new.json"],
    "flux-0.5.23": ["flux-0.5.23-baseline.json", "flux-0.5.23-new.json"],
    "old-vs-new": ["flux-0.5.6.json", "flux-0.5.23-new.json"],
    "multi": ["flux-0.5.23-baseline.json", "flux-0.5.23-new.json", "flux-0.5.9-new.json", "wan-0.5.10.post1.json"],
    "legacy-steps": ["legacy-steps-a.json", "legacy-steps-b.json"],
    "missing-total": ["missing-total.json", "flux-0.5.9-baseline.json"],
    "same": ["flux-0.5.9-baseline.json", "flux-0.5.9-baseline.json"],
}
MARK_STATUS = {"✅": "faster", "🟢": "faster", "❌": "slower", "🔴": "slower", "⚪️": "similar"}


def _masked(markdown: str) -> str:
    return re.sub(r"(?m)^- Timestamp: .*$", "- Timestamp: <masked>", markdown).rstrip("\n")


def _run(files: list[str], **kw):
    paths = [str(PERF / f) for f in files]
    return compare_perf(paths[0], paths[1], paths[2:] or None, chart=False, **kw)


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_markdown_equals_sglang_compare_perf(case):
    result = _run(GOLDEN_CASES[case])
    golden = (PERF / "golden" / f"{case}.md").read_text(encoding="utf-8").rstrip("\n")
    assert _masked(result.markdown) == golden


@pytest.mark.parametrize("case", ["flux-0.5.9", "flux-0.5.23", "old-vs-new", "legacy-steps"])
def test_structured_numbers_match_the_golden_rows(case):
    result = _run(GOLDEN_CASES[case])
    golden = (PERF / "golden" / f"{case}.md").read_text(encoding="utf-8")
    e2e = re.search(r"\*\*E2E Latency\*\* \| ([\d.]+) ms \| ([\d.]+) ms \| \*\*([+-][\d.]+) ms \(([+-][\d.]+)%\)\*\* \| (\S+) \|",
                    golden)
    assert f"{result.total.baseline_ms:.2f}" == e2e.group(1) and f"{result.total.new_ms:.2f}" == e2e.group(2)
    assert f"{result.total.diff_ms:+.2f}" == e2e.group(3) and f"{result.total.diff_pct:+.1f}" == e2e.group(4)
    assert result.total.status == MARK_STATUS[e2e.group(5)]
    rows = re.findall(r"^\| ([^|*]+?) \| ([\d.]+) \| ([\d.]+) \| ([+-][\d.]+) \| ([+-][\d.]+)% \| (\S+) \|$", golden, re.M)
    assert len(rows) == len(result.stages)
    for stage, (name, b, n, d, p, mark) in zip(result.stages, rows):
        assert name.startswith(stage.name)
        assert (f"{stage.baseline_ms:.2f}", f"{stage.new_ms:.2f}", f"{stage.diff_ms:+.2f}", f"{stage.diff_pct:+.1f}") == (b, n, d, p)
        assert stage.status == MARK_STATUS[mark]


def test_the_two_percent_edge_is_similar_like_sglang():
    result = _run(GOLDEN_CASES["flux-0.5.23"])
    assert round(result.total.diff_pct, 1) == -2.0 and result.total.status == "similar"
    assert result.total.speedup == pytest.approx(result.total.baseline_ms / result.total.new_ms)
    decoding = next(s for s in result.stages if s.name == "DecodingStage")
    assert decoding.status == "faster"


def test_denoise_is_the_denoising_stage_with_step_statistics():
    result = _run(GOLDEN_CASES["flux-0.5.9"])
    d = result.denoise
    assert d.baseline_source == d.new_source == "stages"
    assert d.baseline_steps == d.new_steps == 50
    base = load_perf_dump(PERF / "flux-0.5.9-baseline.json")
    assert d.baseline_ms == pytest.approx(next(s.duration_ms for s in base.stages if s.name == "DenoisingStage"))
    assert d.baseline_mean_step_ms == pytest.approx(sum(base.step_times_ms) / 50)
    assert d.status == "faster" and d.speedup > 1
    assert result.memory.baseline_peak_reserved_gb == pytest.approx(39870.0 / 1024)


def test_denoise_falls_back_to_the_sum_of_steps():
    dump = parse_perf_dump({"total_duration_ms": 100.0, "steps": [{"name": "DecodingStage", "duration_ms": 5.0}],
                            "denoise_steps_ms": [{"step": 0, "duration_ms": 10.0}, {"step": 1, "duration_ms": 30.0}]})
    assert dump.denoise_ms == 40.0 and dump.denoise_source == "steps"
    assert dump.steps.count == 2 and dump.steps.median_ms == 20.0


def test_denoise_sums_denoising_and_refinement_but_not_before_denoising():
    dump = parse_perf_dump({"total_duration_ms": 1.0, "steps": [
        {"name": "QwenImageLayeredBeforeDenoisingStage", "duration_ms": 7.0},
        {"name": "LTX2AVDenoisingStage", "duration_ms": 100.0}, {"name": "LTX2RefinementStage", "duration_ms": 50.0}]})
    assert dump.denoise_ms == 150.0


def test_formats_per_release():
    assert load_perf_dump(PERF / "flux-0.5.6.json").format == "stages_only"
    assert load_perf_dump(PERF / "flux-0.5.9-new.json").format == "with_memory"
    d23 = load_perf_dump(PERF / "flux-0.5.23-new.json")
    assert d23.format == "with_host_memory" and d23.versions.since == "0.5.19"
    assert {m.name for m in d23.memory} >= {"load_peak", "runtime_peak"}
    assert d23.model == "black-forest-labs/FLUX.1-dev" and d23.facts.compiled is True


def test_old_format_and_run_fact_warnings():
    result = _run(GOLDEN_CASES["old-vs-new"])
    codes = {w.code for w in result.warnings}
    assert {"old_format_no_steps", "run_facts_unknown", "compiled_cold", "stage_times_unsynchronized"} <= codes
    assert result.denoise.baseline_steps is None and result.denoise.new_steps == 28
    assert result.memory.baseline_peak_reserved_gb is None


def test_different_models_prompts_and_steps_warn():
    result = _run(GOLDEN_CASES["multi"])
    codes = {w.code for w in result.warnings}
    assert {"different_models", "different_prompts", "different_step_counts"} <= codes
    assert [m.label for m in result.more] == ["flux-0.5.9-new.json", "wan-0.5.10.post1.json"]
    assert result.more[1].total.status == "slower"


def test_run_ids_resolve_in_the_state_directory(isolated_state):
    from sglang_diffusion_mcp.tools.runs import store

    for run_id, name in (("run-a", "flux-0.5.9-baseline.json"), ("run-b", "flux-0.5.9-new.json")):
        folder = isolated_state / "runs" / run_id
        folder.mkdir(parents=True)
        shutil.copy(PERF / name, folder / "perf-1.json")  # where run_generate writes it, named in run.json
        store.create_record(str(folder), {"run_id": run_id, "perf_paths": [str(folder / "perf-1.json")]})
    result = compare_perf("run-a", "run-b", chart=False)
    assert result.total.status == "faster"
    assert "- New Commit:" in result.markdown


def test_missing_and_malformed_dumps_are_clear_errors(tmp_path):
    with pytest.raises(ToolInputError) as err:
        compare_perf(str(PERF / "not-json.json"), str(PERF / "flux-0.5.9-new.json"))
    assert err.value.problem.code == "bad_perf_dump"
    with pytest.raises(ToolInputError) as err:
        compare_perf("no-such-run", str(PERF / "flux-0.5.9-new.json"))
    assert err.value.problem.code == "perf_dump_not_found"
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ToolInputError):
        compare_perf(str(tmp_path / "list.json"), str(PERF / "flux-0.5.9-new.json"))


def test_empty_stage_list_gives_a_partial_comparison():
    result = _run(["empty-stages.json", "flux-0.5.9-new.json"])
    assert any(w.code == "empty_stages" for w in result.warnings)
    assert result.total.status == "similar" and result.total.diff_pct == 0.0  # baseline 0, as SGLang
    assert all(s.baseline_ms == 0.0 for s in result.stages)


def test_chart_without_matplotlib_says_how_to_get_it(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = compare_perf(str(PERF / "flux-0.5.9-baseline.json"), str(PERF / "flux-0.5.9-new.json"))
    assert result.chart_path is None
    assert any("sglang-diffusion-mcp[charts]" in w.fix for w in result.warnings if w.code == "charts_unavailable")


def test_chart_with_matplotlib_is_a_png_in_the_state_directory(isolated_state):
    pytest.importorskip("matplotlib")
    result = compare_perf(str(PERF / "flux-0.5.9-baseline.json"), str(PERF / "flux-0.5.9-new.json"))
    path = Path(result.chart_path)
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert isolated_state in path.parents


def test_fuzz_random_and_truncated_dumps_never_crash(tmp_path):
    rng = random.Random(6)
    good = (PERF / "flux-0.5.23-new.json").read_text()
    samples = [good[: rng.randrange(len(good))] for _ in range(40)]
    samples += [json.dumps(v) for v in ({"steps": "x"}, {"steps": [1, None, {"name": 3}]}, {"total_duration_ms": "1"},
                                          {"denoise_steps_ms": {"a": 1}}, {"memory_checkpoints": [1]}, None, 3.5,
                                          {"steps": [{"name": "a", "duration_ms": float("1e308") * 10}]})]
    samples += ["".join(chr(rng.randrange(0, 0x2FF)) for _ in range(rng.randrange(200))) for _ in range(20)]
    baseline = str(PERF / "flux-0.5.9-baseline.json")
    for i, text in enumerate(samples):
        path = tmp_path / f"fuzz{i}.json"
        path.write_text(text, encoding="utf-8")
        try:
            result = compare_perf(baseline, str(path), chart=False)
        except ToolInputError:
            continue
        assert result.markdown.startswith("### Performance Comparison Report")


def test_tools_are_registered_read_only():
    from sglang_diffusion_mcp.server.tool_table import TOOLS
    specs = {s.name: s for s in TOOLS}
    assert specs["compare_perf"].read_only and specs["compare_perf"].idempotent
    assert cp.run_perf_path("abc") is None  # no such run
    assert cp.run_perf_path("../etc") is None  # not a run id
