"""parse_vram_log on logs in the exact formats of each sglang release (see fixtures/vram_logs/PROVENANCE.md)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from sglang_diffusion_mcp.tools.problems import Problem, ToolInputError
from sglang_diffusion_mcp.tools.vram_advice import improve_command, suggest_changes
from sglang_diffusion_mcp.tools.vram_log import analyze_vram_log, parse_vram_log

LOGS = Path(__file__).parent / "fixtures" / "vram_logs"
CMD = "sglang generate --model-path black-forest-labs/FLUX.1-dev --vae-cpu-offload --text-encoder-cpu-offload true"


def parse(name: str, **kw):
    return parse_vram_log(log_path=str(LOGS / name), **kw)


def test_format_a_at_info_from_0_5_9():
    r = parse("format-a-0.5.9-info.log", command=CMD)
    assert r.format == "A" and (r.versions.since, r.versions.until) == ("0.5.9", "0.5.17")
    assert (r.peak_reserved_gb, r.peak_allocated_gb, r.pool_overhead_gb, r.pool_overhead_pct, r.headroom_gb) == \
        (38.93, 36.15, 2.78, 7.1, 40.26)
    assert r.components_can_stay_resident == ["vae", "text_encoder", "text_encoder_2", "transformer"]
    assert r.flags_to_disable == ["--dit-cpu-offload", "--text-encoder-cpu-offload", "--vae-cpu-offload"]
    assert r.log_level == "info" and r.max_peak_mb == pytest.approx(38.93 * 1024)
    # these flags default to on, so the improved command sets them false rather than only dropping them
    argv = r.improved_command.argv
    assert argv[:2] == ["sglang", "generate"]
    for flag in r.flags_to_disable:
        i = argv.index(flag)
        assert argv[i + 1] == "false" and argv.count(flag) == 1


def test_format_a_at_debug_with_two_requests():
    r = parse("format-a-0.5.10.post1-debug-2req.log")
    assert r.log_level == "debug" and r.requests_total == 2
    assert r.peak_reserved_gb == 63.75 and r.headroom_gb == pytest.approx(79.19 - 63.75)  # max peak, min headroom
    assert r.components_can_stay_resident == ["vae", "text_encoder"]  # what every request allows
    assert [q.peak_reserved_gb for q in r.requests] == [61.2, 63.75]


def test_format_a0_of_0_5_8_reports_allocated():
    r = parse("format-a0-0.5.8.log")
    assert r.format == "A0" and r.versions.since == r.versions.until == "0.5.8"
    assert r.peak_allocated_gb == 23.71 and r.peak_reserved_gb is None
    assert r.components_can_stay_resident == ["vae", "text_encoder"]


def test_format_b_uses_the_0_5_18_flags():
    r = parse("format-b-0.5.18.log", command=CMD + " --cpu-offload-components vae dit")
    assert r.format == "B" and (r.versions.since, r.versions.until) == ("0.5.18", "0.5.19")
    assert r.flags_to_disable == []
    vae = next(c for c in r.suggested_changes if c.component == "vae")
    assert vae.remove_values == {"--cpu-offload-components": ["vae"], "--layerwise-offload-components": ["vae"]}
    assert vae.remove == ["--vae-cpu-offload"] and vae.add == ["--vae-cpu-offload", "false"]
    transformer = suggest_changes("B", ["transformer"], [])[0]
    assert transformer.remove == ["--dit-layerwise-offload", "--dit-cpu-offload"]
    assert transformer.remove_values["--cpu-offload-components"] == ["transformer", "dit"]
    argv = r.improved_command.argv
    i = argv.index("--cpu-offload-components")
    assert argv[i + 1] == "dit" and "vae" not in argv[i + 1:i + 2]


def test_format_c_uses_component_residency_in_one_flag():
    r = parse("format-c-0.5.20.log", command=CMD + " --component-residency vae=component-offload")
    assert r.format == "C" and (r.versions.since, r.versions.until) == ("0.5.20", "0.5.22")
    assert all(c.add[0] == "--component-residency" for c in r.suggested_changes)
    argv = r.improved_command.argv
    assert argv.count("--component-residency") == 1  # nargs='+': a second flag would replace the first
    i = argv.index("--component-residency")
    assert argv[i + 1:] == ["vae=resident", "text_encoder=resident", "text_encoder_2=resident", "transformer=resident"]


def test_multi_rank_multi_request_log():
    r = parse("format-c-0.5.23-multi-rank.log")
    assert r.requests_total == 3 and all(q.rank == 0 for q in r.requests)
    assert r.versions.since == "0.5.23"
    assert r.peak_reserved_gb == 78.6 and r.headroom_gb == pytest.approx(0.59)
    assert r.components_can_stay_resident == [] and r.suggested_changes == []
    assert r.max_peak_mb == pytest.approx(78.6 * 1024)


def test_oom_at_load_with_the_releases_remedies():
    r = parse("oom-load-0.5.23.log")
    assert r.oom.detected and r.oom.phase == "load"
    assert r.oom.tried_to_allocate_gb == 2.25 and r.oom.gpu_total_gb == 79.19 and r.oom.gpu_free_gb == 1.06
    assert len(r.oom.remedies) == 3 and "--layerwise-offload-components" in r.oom.remedies[1]
    assert not any(w.code == "rerun_with_debug" for w in r.warnings)


def test_oom_at_runtime_with_the_releases_remedies():
    r = parse("oom-runtime-0.5.9.log")
    assert r.oom.phase == "runtime"
    assert r.oom.remedies[0] == "Enable SP and/or TP (in a multi-GPU setup)" and len(r.oom.remedies) == 5


def test_info_only_log_says_rerun_with_debug():
    r = parse("info-only-0.5.23.log")
    assert r.format is None and r.log_level == "info" and r.max_peak_mb == pytest.approx(41216.0)
    w = next(w for w in r.warnings if w.code == "rerun_with_debug")
    assert "--log-level debug" in w.fix


def test_release_hint_before_debug_only_changes_the_advice():
    r = parse("info-only-0.5.23.log", sglang_version="0.5.9")
    assert {w.code for w in r.warnings} >= {"no_vram_analysis"}
    assert not any(w.code == "rerun_with_debug" for w in r.warnings)


def test_text_input_with_ansi_and_crlf():
    line = ("\x1b[93m[rank1]: 2026-06-30 12:00:01 GPU memory: peak=20.00 GB, allocated=18.00 GB, pool=2.00 GB (10.0%), "
            "headroom=59.19 GB. Components that can remain on GPU: ['vae']. Make it explicit with "
            "--component-residency <name>=resident.\x1b[0;0m\r\n")
    r = parse_vram_log(text="noise\n" + line, command=["HF_HOME=/x", "sglang", "generate", "--prompt", "a; b"])
    assert r.requests[0].rank == 1 and r.peak_reserved_gb == 20.0
    assert r.improved_command.env == {"HF_HOME": "/x"}
    assert r.improved_command.command.endswith("--prompt 'a; b' --component-residency vae=resident")


def test_validation_seam_receives_the_improved_command():
    seen = []

    def validator(argv, env):
        seen.append(argv)
        return [Problem(code="checked", message="ok")]

    r = analyze_vram_log(log_path=str(LOGS / "format-c-0.5.20.log"), command=CMD, validate=validator)
    assert seen == [r.improved_command.argv] and r.improved_command.problems[0].code == "checked"
    not_sglang = improve_command("python x.py --vae-cpu-offload", [])
    assert not_sglang.problems[0].code == "not_sglang_generate" and not_sglang.applied == []


@pytest.mark.parametrize("log", ["format-a-0.5.9-info.log", "format-b-0.5.18.log", "format-c-0.5.20.log"])
def test_remove_holds_flag_names_only_in_every_format(log):
    changes = parse(log).suggested_changes
    assert changes
    for change in changes:
        assert all(f.startswith("--") and " " not in f for f in change.remove), change.remove
        assert all(f.startswith("--") and " " not in f for f in change.remove_values), change.remove_values
        assert all(v and " " not in v for values in change.remove_values.values() for v in values)


@pytest.mark.parametrize("command", ["ls -la", "", "python -m sglang.launch_server --model-path x",
                                     "HF_HOME=/x sglang serve --model-path x", ["sglang"]])
def test_a_command_that_is_not_sglang_generate_gets_no_improved_command(command):
    r = parse("format-a-0.5.9-info.log", command=command)
    assert r.improved_command is None
    w = next(w for w in r.warnings if w.code == "not_sglang_generate")
    assert "not an `sglang generate` line" in w.message or "empty" in w.message
    assert r.suggested_changes  # the analysis itself still stands


def test_sglang_by_path_is_still_sglang_generate():
    r = parse("format-a-0.5.9-info.log", command="/opt/venv/bin/sglang generate --model-path m --vae-cpu-offload")
    assert r.improved_command is not None and "--vae-cpu-offload" in r.improved_command.argv


@pytest.mark.parametrize("line", [
    "[06-30 12:00:01] GPU memory: peak=abc GB, allocated=18.00 GB, pool=2.00 GB (10.0%), headroom=59.19 GB.",
    "[06-30 12:00:01] GPU memory: peak=20.00 GB, allocated=18.00",  # cut mid-line
    "[06-30 12:00:01] Peak GPU memory: 38.93 GB; Peak allocated 36.15 GB (new layout)",
])
def test_a_malformed_analysis_line_is_not_a_log_level_problem(line):
    text = "[06-30 12:00:00] server_args: {'log_level': 'info'}\n" + line + "\n" + \
        "[06-30 12:00:02] Memory usage - Max peak: 20480.00 MB, Avg peak: 10000.00 MB\n"
    r = parse_vram_log(text=text)
    codes = {w.code for w in r.warnings}
    assert "analysis_unparsed" in codes and "rerun_with_debug" not in codes
    w = next(w for w in r.warnings if w.code == "analysis_unparsed")
    assert "Could not parse the analysis line" in w.message and "line 2" in w.message
    assert r.max_peak_mb == 20480.0 and r.format is None


def test_an_unreadable_line_beside_readable_ones_is_reported_too():
    good = (LOGS / "format-c-0.5.23-multi-rank.log").read_text(encoding="utf-8")
    r = parse_vram_log(text=good + "GPU memory: peak=?? GB\n")
    assert r.requests_total == 3 and any(w.code == "analysis_unparsed" for w in r.warnings)


@pytest.mark.parametrize("kwargs, code", [({}, "bad_input"), ({"text": "a", "log_path": "b"}, "bad_input"),
                                          ({"log_path": "/nonexistent/x.log"}, "log_not_found"),
                                          ({"text": "x" * (4 * 1024 * 1024 + 1)}, "text_too_long")])
def test_bad_inputs_are_tool_input_errors(kwargs, code):
    with pytest.raises(ToolInputError) as err:
        parse_vram_log(**kwargs)
    assert err.value.problem.code == code


def test_empty_binary_and_garbage_get_a_clear_answer(tmp_path):
    assert parse_vram_log(text="").warnings[0].code == "empty_log"
    binary = tmp_path / "x.bin"
    binary.write_bytes(bytes(range(256)) * 100)
    assert parse_vram_log(log_path=str(binary)).warnings[0].code == "binary_input"
    garbage = parse_vram_log(text="lorem ipsum\n" * 50)
    assert garbage.format is None and garbage.warnings and garbage.summary
    with pytest.raises(ToolInputError):
        parse_vram_log(log_path=str(tmp_path))  # a directory


def test_fuzz_random_and_truncated_logs_never_crash(tmp_path):
    rng = random.Random(5)
    corpus = "".join(p.read_text(encoding="utf-8") for p in sorted(LOGS.glob("*.log")))
    samples = []
    for _ in range(60):
        start = rng.randrange(len(corpus))
        samples.append(corpus[start:start + rng.randrange(1, 3000)])
    samples += ["".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randrange(400))) for _ in range(20)]
    samples += ["GPU memory: peak=nan GB, allocated=inf GB, pool=-1 GB (nan%), headroom=1e9 GB. Components that can "
                "remain on GPU: ['a', 1, [2]]. ", "Peak GPU memory: 1 GB, Remaining GPU memory at peak: 2 GB. "
                "Components that can stay resident: [" + "[" * 500, "OOM detected.\n" * 100]
    for text in samples:
        try:
            r = parse_vram_log(text=text, command="sglang generate --vae-cpu-offload")
        except ToolInputError:
            continue
        json.dumps(r.model_dump())
    for i in range(10):
        path = tmp_path / f"f{i}.log"
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(5000))))
        parse_vram_log(log_path=str(path))


PROBE = r"""
import json, resource, sys
from sglang_diffusion_mcp.tools.vram_log import parse_vram_log
parse_vram_log(text="warm up")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = parse_vram_log(log_path=sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kb": after - before, "requests": r.requests_total, "lines": r.lines_scanned,
                  "peak": r.peak_reserved_gb}))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's unit")
def test_64mb_log_streams_in_constant_memory(tmp_path):
    analysis = (LOGS / "format-c-0.5.23-multi-rank.log").read_text(encoding="utf-8")
    filler = ("[06-30 12:00:01] [DenoisingStage] step 12/50 " + "x" * 120 + "\n") * 4000
    path = tmp_path / "big.log"
    with open(path, "w", encoding="utf-8") as f:
        while f.tell() < 64 * 1024 * 1024:
            f.write(filler)
            f.write(analysis)
    size = path.stat().st_size
    out = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    probe = json.loads(out.stdout)
    assert probe["requests"] > 3 and probe["peak"] == 78.6
    assert probe["lines"] == path.read_bytes().count(b"\n")
    assert probe["growth_kb"] * 1024 < size / 4, probe


@pytest.mark.parametrize("name, extra", [
    ("format-a-0.5.9-info.log", ""),
    ("format-b-0.5.18.log", " --cpu-offload-components vae dit"),
    ("format-c-0.5.20.log", " --component-residency vae=component-offload"),
])
def test_improved_command_passes_check_command(name, extra):
    from sglang_diffusion_mcp.tools.check_command import check_command

    r = parse(name, command=CMD + extra)
    assert r.improved_command.problems == []
    version = r.versions.until or r.versions.since
    assert check_command(argv=r.improved_command.argv, sglang_version=version).valid
