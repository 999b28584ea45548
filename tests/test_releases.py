"""The generated sglang release table and the API the rules engine uses over it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sglang_diffusion_mcp.knowledge import loader
from sglang_diffusion_mcp.knowledge import releases as R
from sglang_diffusion_mcp.knowledge.schema.release import Release

FIXTURES = Path(__file__).parent / "fixtures" / "sglang"
EXPECTED = [
    "0.5.9", "0.5.10", "0.5.10.post1", "0.5.11", "0.5.12", "0.5.12.post1", "0.5.13", "0.5.13.post1",
    "0.5.14", "0.5.15", "0.5.15.post1", "0.5.16", "0.5.17", "0.5.18", "0.5.19", "0.5.20", "0.5.21",
    "0.5.22", "0.5.23",
]


def versions_between(lo: str, hi: str) -> list[str]:
    return [v for v in EXPECTED if R.parse_version(lo) <= R.parse_version(v) <= R.parse_version(hi)]


# ---- the table itself -------------------------------------------------------------------------
def test_every_release_present_and_ordered():
    rows = loader.load("releases")
    assert [r.version for r in rows] == EXPECTED  # file order is release order
    assert R.known_versions() == EXPECTED
    assert R.newest() == "0.5.23" and R.oldest() == "0.5.9"


def test_rows_are_well_formed():
    for row in loader.load("releases"):
        assert isinstance(row, Release)
        assert row.id == f"sglang-{row.version}"
        assert row.releases.since == row.releases.until == row.version
        assert all(s.ref.startswith(f"sglang=={row.version}:") for s in row.sources)
        names = [f.flag for f in row.flags]
        assert len(names) == len(set(names)), "duplicate flag rows"
        assert len(row.flags) > 100
        for f in row.flags:
            assert re.fullmatch(r"--[\w.\-]+", f.flag)
            if f.style == "choice":
                assert f.choices
        assert row.warmup, "every covered release can warm up"
        assert row.vram_log_format in ("A", "B", "C")


def test_core_flags_exist_everywhere():
    core = ["--model-path", "--prompt", "--num-gpus", "--tp-size", "--sp-degree", "--ulysses-degree", "--ring-degree",
            "--enable-cfg-parallel", "--dit-cpu-offload", "--text-encoder-cpu-offload", "--vae-cpu-offload",
            "--image-encoder-cpu-offload", "--dit-layerwise-offload", "--dit-offload-prefetch-size",
            "--use-fsdp-inference", "--pin-cpu-memory", "--enable-torch-compile", "--attention-backend",
            "--perf-dump-path", "--log-level", "--backend", "--dit-precision", "--vae-precision",
            "--warmup-resolutions", "--enable-svdquant", "--cache-dit-config"]
    for v in EXPECTED:
        missing = [f for f in core if not R.has_flag(v, f)]
        assert not missing, (v, missing)


# ---- known boundaries, checked against the data --------------------------------------------
def test_cfg_parallel_is_a_bare_switch_up_to_0_5_10_post1():
    for v in versions_between("0.5.9", "0.5.10.post1"):
        assert R.flag_info(v, "--enable-cfg-parallel").style == "switch"
        assert R.spell_bool(v, "--enable-cfg-parallel", True) == ["--enable-cfg-parallel"]
        assert R.spell_bool(v, "--enable-cfg-parallel", False) == []
    for v in versions_between("0.5.12", "0.5.23"):
        assert R.spell_bool(v, "--enable-cfg-parallel", True) == ["--enable-cfg-parallel", "true"]
        assert R.spell_bool(v, "--enable-cfg-parallel", False) == ["--enable-cfg-parallel", "false"]


def test_warmup_flag_per_release():
    for v in versions_between("0.5.9", "0.5.13.post1"):
        assert R.warmup_argv(v) == ["--warmup"]
        assert not R.has_flag(v, "--warmup-mode")
    for v in versions_between("0.5.14", "0.5.23"):
        assert R.warmup_argv(v) == ["--warmup-mode", "request"]
        assert "request" in R.flag_info(v, "--warmup-mode").choices
    # --warmup lingers, deprecated, until it is removed
    for v in versions_between("0.5.14", "0.5.17"):
        assert R.flag_info(v, "--warmup").deprecated
    assert not R.has_flag("0.5.18", "--warmup")


def test_performance_mode_from_0_5_12():
    for v in versions_between("0.5.9", "0.5.11"):
        assert not R.has_flag(v, "--performance-mode")
        assert R.performance_mode_manual_argv(v) == []
    for v in versions_between("0.5.12", "0.5.23"):
        info = R.flag_info(v, "--performance-mode")
        assert info.default == "auto" and "manual" in info.choices
        assert R.has_flag(v, "--mode")  # alias
        assert R.performance_mode_manual_argv(v) == ["--performance-mode", "manual"]


def test_vram_log_format_and_level():
    assert R.vram_log("0.5.9")[:2] == ("A", "info") and not R.needs_debug_for_vram_log("0.5.9")
    for v in versions_between("0.5.10", "0.5.17"):
        assert R.vram_log(v)[:2] == ("A", "debug") and R.needs_debug_for_vram_log(v)
    for v in versions_between("0.5.18", "0.5.19"):
        assert R.vram_log(v)[:2] == ("B", "debug")
    for v in versions_between("0.5.20", "0.5.23"):
        fmt, level, text = R.vram_log(v)
        assert (fmt, level) == ("C", "debug") and "--component-residency" in text
    assert R.vram_log_argv("0.5.23") == ["--log-level", "debug"] and R.vram_log_argv("0.5.9") == []


def test_offload_component_flags_appear_when_expected():
    assert not R.has_flag("0.5.17", "--component-residency") and R.has_flag("0.5.18", "--component-residency")
    assert not R.has_flag("0.5.17", "--cpu-offload-components") and R.has_flag("0.5.18", "--cpu-offload-components")
    assert not R.has_flag("0.5.12", "--layerwise-offload-components")
    assert R.has_flag("0.5.13", "--layerwise-offload-components")
    assert R.flag_info("0.5.13", "--layerwise-offload-modules").flag == "--layerwise-offload-components"


def test_log_lines_and_perf_dump_read_from_code():
    for v in EXPECTED:
        timing = R.log_lines(v, "warmed_up_timing")
        assert timing and timing[0].template.endswith("(with warmup excluded)") and timing[0].level == "info"
        assert R.log_lines(v, "max_peak")[0].template.startswith("Memory usage - Max peak:")
        assert R.log_lines(v, "server_args")
        dump = R.perf_dump_format(v)
        assert {"total_duration_ms", "steps", "denoise_steps_ms", "memory_checkpoints"} <= set(dump.keys)
        assert dump.stage_item_keys == ["name", "duration_ms"]
    assert R.log_lines("0.5.23", "warmup_failed")[0].level == "warning"


# ---- the captured --help agrees with the generated 0.5.10.post1 row --------------------------
def _help_usage_flags(text: str) -> dict[str, str]:
    usage = text.split("\n\n", 1)[0]
    out = {}
    for m in re.finditer(r"\[(--[\w.\-]+)((?:\s(?:[^\[\]]|\[[^\[\]]*\])+)?)\]", usage):
        rest = (m.group(2) or "").strip()
        out[m.group(1)] = "switch" if not rest else (
            "bool_value" if re.fullmatch(r"\[[A-Z0-9_.]+\]", rest) else "value")
    return out


def test_help_fixture_agrees_with_0_5_10_post1_row():
    text = (FIXTURES / "generate-help-0.5.10.post1.txt").read_text(encoding="utf-8")
    from_help = _help_usage_flags(text)
    row = R.resolve("0.5.10.post1")
    from_table = {f.flag: ("value" if f.style == "choice" else f.style) for f in row.flags}
    from_help.pop("--help", None)
    assert set(from_help) == set(from_table)
    assert from_help == from_table
    assert "--dp-size" in text and R.flag_info("0.5.10.post1", "--dp").flag == "--data-parallel-size"


# ---- resolve() and friends --------------------------------------------------------------------
def test_resolve_exact_and_nearest():
    r = R.resolve("0.5.10.post1")
    assert r.exact and r.version == "0.5.10.post1" and r.note == ""
    r = R.resolve("0.5.16.post2")
    assert not r.exact and r.version == "0.5.16" and "nearest" in r.note
    r = R.resolve("0.5.30")
    assert r.version == "0.5.23" and "newer" in r.note
    assert R.resolve("0.5.14rc1").version == "0.5.13.post1"
    assert R.resolve("v0.5.12").version == "0.5.12"
    assert R.resolve("0.5.12+cu128").version == "0.5.12"
    assert R.resolve(None).version == "0.5.23"


@pytest.mark.parametrize("bad", ["0.5.8", "0.4.0", "garbage", "", "0.5", "latest", "1.2.3.4"])
def test_resolve_rejects_old_or_garbage(bad):
    with pytest.raises(ValueError, match=r"sglang|version"):
        R.resolve(bad)


def test_flag_lookup_forms_and_errors():
    assert R.has_flag("0.5.23", "--warmup-mode=request")
    assert R.has_flag("0.5.23", "warmup_mode")
    assert not R.has_flag("0.5.23", "--no-such-flag")
    with pytest.raises(ValueError, match="0.5.12"):
        R.spell_bool("0.5.11", "--performance-mode", True)  # error names where it exists
    with pytest.raises(ValueError, match="exists in: 0.5.9..0.5.17"):
        R.spell("0.5.23", "--warmup", True)
    with pytest.raises(ValueError, match="not a boolean"):
        R.spell_bool("0.5.23", "--num-gpus", True)
    with pytest.raises(ValueError, match="choices"):
        R.spell("0.5.23", "--performance-mode", "fastest")
    assert R.spell("0.5.23", "--ulysses-degree", 4) == ["--ulysses-degree", "4"]
    assert R.spell("0.5.23", "--component-residency", ["dit=resident", "vae=resident"]) == [
        "--component-residency", "dit=resident", "vae=resident"]


def test_flag_history_spans_cover_all_releases():
    spans = R.flag_history("--enable-cfg-parallel")
    assert spans[0].since == "0.5.9" and spans[-1].until == "0.5.23"
    assert [s.info.style for s in spans if s.info] == ["switch", "switch", "bool_value"]
    assert all(s.info is None for s in R.flag_history("--does-not-exist"))
