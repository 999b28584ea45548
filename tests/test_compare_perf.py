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
    codes = {w.code for w in result.warnings}
    assert {"empty_stages", "missing_total", "stages_one_side"} <= codes
    # SGLang reads the 0 ms total as a 0 % "similar"; the structured verdict says it is unknown instead
    t = result.total
    assert (t.baseline_ms, t.diff_ms, t.diff_pct, t.speedup, t.status) == (None, None, None, None, None)
    assert result.throughput.baseline_req_per_s is None and result.throughput.new_req_per_s > 0
    assert all(s.baseline_ms is None and s.only_in == "new" and s.status is None for s in result.stages)
    assert "| **E2E Latency** | 0.00 ms |" in result.markdown  # SGLang's markdown is kept


def _with_total(tmp_path, value, name="new.json"):
    data = json.loads((PERF / "flux-0.5.9-new.json").read_text())
    if value is ...:
        del data["total_duration_ms"]
    else:
        data["total_duration_ms"] = value
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("value", [..., "abc", 0, None, -5])
def test_a_missing_or_garbage_total_is_null_not_faster(tmp_path, value):
    new = _with_total(tmp_path, value)
    result = compare_perf(str(PERF / "flux-0.5.9-baseline.json"), new, chart=False)
    t = result.total
    assert t.new_ms is None and t.diff_pct is None and t.speedup is None and t.status is None
    assert t.baseline_ms > 0 and result.throughput.new_req_per_s is None
    warning = next(w for w in result.warnings if w.code == "missing_total")
    assert "new.json" in warning.message
    if value in (..., 0, None):  # SGLang's own script prints these as 0 ms, -100 %, faster (it crashes on "abc")
        assert "| 0.00 ms | **-" in result.markdown and "(-100.0%)** | ✅ |" in result.markdown
    assert result.denoise.status is not None  # the stages still compare


def test_a_stage_on_one_side_only_has_no_status(tmp_path):
    base = json.loads((PERF / "flux-0.5.9-baseline.json").read_text())
    new = json.loads((PERF / "flux-0.5.9-new.json").read_text())
    new["steps"] = [s for s in new["steps"] if s["name"] != "DecodingStage"] + [{"name": "UpscaleStage",
                                                                                 "duration_ms": 900.0}]
    (tmp_path / "b.json").write_text(json.dumps(base))
    (tmp_path / "n.json").write_text(json.dumps(new))
    result = compare_perf(str(tmp_path / "b.json"), str(tmp_path / "n.json"), chart=False)
    by_name = {s.name: s for s in result.stages}
    dec, up = by_name["DecodingStage"], by_name["UpscaleStage"]
    assert (dec.only_in, dec.new_ms, dec.status, dec.diff_pct) == ("baseline", None, None, None)
    assert (up.only_in, up.baseline_ms, up.status, up.diff_pct) == ("new", None, None, None)
    assert by_name["DenoisingStage"].status == "faster" and by_name["DenoisingStage"].only_in is None
    w = next(w for w in result.warnings if w.code == "stages_one_side")
    assert "DecodingStage (baseline only)" in w.message and "UpscaleStage (new only)" in w.message
    assert "| DecodingStage | 371.20 | 0.00 | -371.20 | -100.0% | 🟢 |" in result.markdown  # SGLang's row


def _many_stages(tmp_path, name, n, scale):
    stages = [{"name": f"Stage{i:04d}WithARealisticallyLongName", "duration_ms": 10.0 + i * scale} for i in range(n)]
    path = tmp_path / name
    path.write_text(json.dumps({"commit_hash": "abc", "total_duration_ms": 5000.0 * scale, "steps": stages,
                                "denoise_steps_ms": [{"step": i, "duration_ms": 3.0} for i in range(1000)]}))
    return str(path)


def test_markdown_is_capped_and_the_full_report_is_a_file(tmp_path, isolated_state):
    a, b = _many_stages(tmp_path, "a.json", 1000, 1.0), _many_stages(tmp_path, "b.json", 1000, 1.1)
    c = _many_stages(tmp_path, "c.json", 1000, 0.9)
    result = compare_perf(a, b, chart=False)
    assert result.markdown_truncated and "960 more stages in markdown_path" in result.markdown
    assert len(result.markdown) < 8_000
    full = Path(result.markdown_path).read_text(encoding="utf-8")
    assert isolated_state / "compare" in Path(result.markdown_path).parents
    assert full.count("WithARealisticallyLongName") == 1000 and full.startswith("### Performance Comparison Report")
    capped_rows = [line for line in result.markdown.splitlines() if "WithARealisticallyLongName" in line]
    assert capped_rows == [line for line in full.splitlines() if "WithARealisticallyLongName" in line][:40]
    # the whole result, with two further runs, stays under ~8k tokens
    multi = compare_perf(a, b, [c, b], chart=False)
    assert "960 more stages in markdown_path" in multi.markdown
    assert len(multi.model_dump_json()) < 32_000, len(multi.model_dump_json())
    assert multi.stages_total == 1000 and len(multi.more[0].stages) == cp.MAX_MORE_STAGES


def test_a_short_report_is_whole_and_still_written(isolated_state):
    result = _run(GOLDEN_CASES["flux-0.5.9"])
    assert not result.markdown_truncated
    assert _masked(Path(result.markdown_path).read_text(encoding="utf-8")) == _masked(result.markdown)


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


# ------------------------------------------------------------------ run facts from run_generate's sidecars

RUN_ARGV = ["--model-path", "black-forest-labs/FLUX.1-dev", "--prompt", "a fox", "--width", "1024",
            "--height", "1024", "--num-inference-steps", "50"]


def _added(run_id, profile=False):
    """What run_generate appends to a run's argv (tools/run_generate.py), pointing into the run's folder."""
    folder = f"/state/runs/{run_id}"
    extra = ["--warmup-mode", "request", "--log-level", "debug"] + (["--profile"] if profile else [])
    return extra + ["--perf-dump-path", f"{folder}/perf-1.json", "--output-path", folder,
                    "--output-file-name", f"{run_id}-r1"]


def _sidecar_run(tmp_path, run_id, dump="flux-0.5.9-baseline.json", user=(), profile=False, **facts):
    """A dump and the .meta.json sidecar run_generate writes for it (tools/runs/results.py _sidecar_facts)."""
    path = tmp_path / f"{run_id}.json"
    shutil.copy(PERF / dump, path)
    sidecar = {"run_id": run_id, "sglang_version": "0.5.9", "model": "black-forest-labs/FLUX.1-dev",
               "prompt": "a fox", "num_inference_steps": 50, "compiled": False, "profile": profile, "warmup": True,
               "sync_stage_profiling": True, "gpus": ["0"], "flags": [*RUN_ARGV, *user, *_added(run_id, profile)],
               "hardware": "1xH100-80GB-sxm", "status": "succeeded", "warmup_excluded_s": 12.5, "error_code": None}
    sidecar.update(facts)
    (tmp_path / f"{run_id}.json.meta.json").write_text(json.dumps(sidecar))
    return str(path)


def _codes(result):
    return {w.code for w in result.warnings}


def test_run_generate_additions_do_not_make_flags_differ(tmp_path):
    a = _sidecar_run(tmp_path, "20260101-000000-aaaaaa")
    b = _sidecar_run(tmp_path, "20260101-000001-bbbbbb", dump="flux-0.5.9-new.json", gpus=["1"])
    result = compare_perf(a, b, chart=False)
    assert not _codes(result) & {"different_flags", "different_gpus", "run_facts_unknown", "run_facts_partial",
                                 "profiled_run", "run_failed", "ran_cold"}, result.warnings


def test_different_flags_are_named(tmp_path):
    a = _sidecar_run(tmp_path, "20260101-000000-aaaaaa", user=["--attention-backend", "torch_sdpa"])
    b = _sidecar_run(tmp_path, "20260101-000001-bbbbbb", user=["--attention-backend", "fa", "--enable-torch-compile"])
    w = next(w for w in compare_perf(a, b, chart=False).warnings if w.code == "different_flags")
    assert "--attention-backend (torch_sdpa vs fa)" in w.message and "--enable-torch-compile (absent vs set)" in w.message
    assert "--perf-dump-path" not in w.message and "--output" not in w.message and "--log-level" not in w.message


def test_the_run_records_additions_decide_what_run_generate_added(tmp_path, isolated_state):
    from sglang_diffusion_mcp.tools.runs import store

    # run B's user asked for --log-level info themselves, so it is theirs, not run_generate's
    a = _sidecar_run(tmp_path, "20260101-000000-aaaaaa")
    b = _sidecar_run(tmp_path, "20260101-000001-bbbbbb", flags=[*RUN_ARGV, "--log-level", "info", "--warmup-mode",
                                                                "request", "--perf-dump-path", "/x/perf-1.json"])
    for run_id, added in (("20260101-000000-aaaaaa", ["--warmup-mode", "--log-level"]),
                          ("20260101-000001-bbbbbb", ["--warmup-mode"])):
        rdir = store.run_dir(str(isolated_state), run_id)
        store.create_record(rdir, {"run_id": run_id, "additions": [
            {"kind": "flag", "name": n, "value": None, "reason": "r"} for n in [*added, "--perf-dump-path"]]})
    w = next(w for w in compare_perf(a, b, chart=False).warnings if w.code == "different_flags")
    assert "--log-level (absent vs info)" in w.message and "--warmup-mode" not in w.message


@pytest.mark.parametrize("facts, code, needle", [
    ({"profile": True}, "profiled_run", "profiled timings are not baselines"),
    ({"status": "failed", "error_code": "oom"}, "run_failed", "failed (oom)"),
    ({"status": "timeout"}, "run_failed", "timeout"),
    ({"error_code": "no_perf_dump"}, "run_failed", "no_perf_dump"),
    ({"warmup_excluded_s": None}, "ran_cold", "ran cold"),
])
def test_profiled_failed_and_cold_runs_are_called_out(tmp_path, facts, code, needle):
    a = _sidecar_run(tmp_path, "20260101-000000-aaaaaa")
    b = _sidecar_run(tmp_path, "20260101-000001-bbbbbb", dump="flux-0.5.9-new.json",
                     profile=bool(facts.pop("profile", False)), **facts)
    result = compare_perf(a, b, chart=False)
    w = next(w for w in result.warnings if w.code == code)
    assert needle in w.message and "20260101-000001-bbbbbb.json" in w.message
    assert "different_flags" not in _codes(result)  # --profile is run_generate's, the profiled warning covers it


def test_facts_a_sidecar_lacks_are_unknown_not_guessed(tmp_path):
    a = _sidecar_run(tmp_path, "20260101-000000-aaaaaa")
    b = tmp_path / "old.json"
    shutil.copy(PERF / "flux-0.5.9-new.json", b)
    (tmp_path / "old.json.meta.json").write_text(json.dumps({"model": "black-forest-labs/FLUX.1-dev", "warmup": True}))
    result = compare_perf(a, str(b), chart=False)
    w = next(w for w in result.warnings if w.code == "run_facts_partial")
    assert "old.json" in w.message and "profile, status, warmup_excluded_s" in w.message
    assert not _codes(result) & {"ran_cold", "run_failed", "profiled_run"}


def test_a_run_with_repeats_is_compared_through_its_median_repeat(tmp_path, isolated_state):
    from sglang_diffusion_mcp.tools.runs import store

    run_id = "20260101-000000-rrrrrr"
    rdir = Path(store.run_dir(str(isolated_state), run_id))
    rdir.mkdir(parents=True)
    paths = []
    for i, total in enumerate((300.0, 100.0, 200.0), start=1):
        data = json.loads((PERF / "flux-0.5.9-new.json").read_text()) | {"total_duration_ms": total}
        (rdir / f"perf-{i}.json").write_text(json.dumps(data))
        paths.append(str(rdir / f"perf-{i}.json"))
    store.create_record(str(rdir), {"run_id": run_id, "perf_paths": paths, "repeats": 3})
    result = compare_perf(str(PERF / "flux-0.5.9-baseline.json"), run_id, chart=False)
    assert result.new == paths[2] and result.total.new_ms == 200.0
    w = next(w for w in result.warnings if w.code == "median_repeat")
    assert "3 repeats" in w.message and "repeat 3 (perf-3.json)" in w.message
    assert cp.run_perf_path(run_id) == Path(paths[2])
