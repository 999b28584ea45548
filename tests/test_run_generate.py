"""run_generate against the fake sglang: results per release, every status and error code, safety."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from run_helpers import alive, read_pid, stop_leftover_runs, use_fake, wait_until  # noqa: E402

from sglang_diffusion_mcp.tools import run_generate as rg  # noqa: E402
from sglang_diffusion_mcp.tools.problems import ToolInputError  # noqa: E402

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_leftover_processes(isolated_state):
    yield
    stop_leftover_runs(isolated_state)
MODEL = "Qwen/Qwen-Image"


async def run(**kwargs):
    args = {"model": MODEL, "prompt": "a red fox", "gpus": [0], "num_inference_steps": 4, "wait_s": 30} | kwargs
    return await rg.run_generate(**args)


@pytest.mark.parametrize("version,warmup,debug,vram_format", [
    ("0.5.9", ["--warmup"], False, "A0"),
    ("0.5.10.post1", ["--warmup"], True, "A"),
    ("0.5.23", ["--warmup-mode", "request"], True, "C"),
])
async def test_succeeds_with_release_specific_additions(monkeypatch, tmp_path, isolated_state, version, warmup, debug,
                                                         vram_format):
    use_fake(monkeypatch, tmp_path, version=version)
    r = await run(width=512, height=512)
    assert r.status == "succeeded", (r.error, r.log_tail)
    assert r.error is None and r.exit_code == 0 and r.progress == 1.0
    assert r.sglang_version == version
    assert r.argv[:2] == ["sglang", "generate"]
    joined = " ".join(r.argv)
    assert " ".join(warmup) in joined
    assert ("--log-level debug" in joined) is debug
    names = {a.name for a in r.additions}
    assert {"--perf-dump-path", "--output-path", "SGLANG_DIFFUSION_SYNC_STAGE_PROFILING",
            "FLASHINFER_DISABLE_VERSION_CHECK", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", warmup[0]} <= names
    assert r.env["CUDA_VISIBLE_DEVICES"] == "0" and r.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert r.warmup_excluded_s is not None and r.warmup_excluded_s >= 0
    assert r.perf.steps.count == 4 and r.perf.denoise_ms > 0 and r.perf.total_ms > 0
    assert [s.name for s in r.perf.stages][-2:] == ["DenoisingStage", "DecodingStage"]
    assert r.peak_vram_gb == 30.0
    assert r.vram and r.vram["peak_reserved_gb"] == 30.0 and r.vram["format"].startswith(vram_format[0])
    assert isinstance(r.server_args, dict) and r.server_args["model_path"] == MODEL
    run_dir = Path(r.run_dir)
    assert run_dir.parent == isolated_state / "runs"
    assert r.outputs and all(Path(p).parent == run_dir for p in r.outputs)
    assert Path(r.perf_dump_path).parent == run_dir
    meta = json.loads(Path(r.perf_dump_path + ".meta.json").read_text())
    assert meta["run_id"] == r.run_id and meta["sglang_version"] == version and meta["warmup"] is True
    assert meta["sync_stage_profiling"] is True and meta["num_inference_steps"] == 4 and meta["gpus"] == ["0"]
    assert 0 < len(r.log_tail) <= 40


@pytest.mark.parametrize("mode,version,status,code", [
    ("oom", "0.5.23", "failed", "oom"),
    ("fail_exit0", "0.5.10.post1", "failed", "no_perf_dump"),
    ("bad_flag", "0.5.9", "failed", "bad_flag"),
    ("bad_flag", "0.5.23", "failed", "bad_flag"),
    ("diffusers_fallback", "0.5.23", "failed", "diffusers_fallback"),
    ("gated", "0.5.10.post1", "failed", "gated_model"),
    ("model_not_found", "0.5.23", "failed", "model_not_found"),
    ("cuda", "0.5.23", "failed", "cuda"),
    ("nccl", "0.5.9", "failed", "nccl"),
    ("disk_full", "0.5.23", "failed", "disk_full"),
    ("no_perf_dump", "0.5.23", "failed", "no_perf_dump"),
    ("no_output", "0.5.10.post1", "failed", "no_perf_dump"),
    ("crash", "0.5.23", "failed", "unknown"),
])
async def test_error_codes(monkeypatch, tmp_path, mode, version, status, code):
    use_fake(monkeypatch, tmp_path, mode=mode, version=version)
    r = await run()
    assert (r.status, r.error.code if r.error else None) == (status, code), r.log_tail
    assert r.error.message and r.error.fix
    if mode == "bad_flag":
        assert r.exit_code == (2 if version == "0.5.9" else 1)
    if mode in ("oom", "fail_exit0", "no_perf_dump", "no_output", "diffusers_fallback"):
        assert r.exit_code == 0  # sglang exits 0 here; the result still says failed


async def test_timeout_stops_the_run(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path, mode="hang")
    r = await run(timeout_s=1, wait_s=20)
    assert r.status == "timeout" and r.error.code == "timeout"
    rec = json.loads((Path(r.run_dir) / "run.json").read_text())
    assert not alive(rec["pid"])
    wait_until(lambda: not alive(rec["supervisor_pid"]), timeout=10)  # it exits once the run is closed


async def test_warmup_failed_gives_null_timing_and_a_warning(monkeypatch, tmp_path):
    for version in ("0.5.23", "0.5.10.post1"):
        use_fake(monkeypatch, tmp_path, mode="warmup_failed", version=version)
        r = await run()
        assert r.status == "succeeded"
        assert r.warmup_excluded_s is None
        assert "warmup_failed" in {w.code for w in r.warnings}


async def test_repeats_give_median_and_spread(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path)
    r = await run(repeats=3)
    assert r.status == "succeeded"
    assert r.repeats.count == 3 and len(r.repeats.values_s) == 3
    assert r.repeats.median_s is not None and r.repeats.spread_pct is not None
    assert len(r.outputs) == 3


@pytest.mark.parametrize("prompt", [
    "it's \"quoted\"; rm -rf / && echo $(whoami) `id` $HOME\nsecond line | cat > /tmp/x",
    "--prompt-that-looks-like-a-flag",
    "",
])
async def test_prompt_reaches_sglang_unchanged_as_one_argument(monkeypatch, tmp_path, prompt):
    use_fake(monkeypatch, tmp_path)
    argv_file = tmp_path / "argv.json"
    monkeypatch.setenv("FAKE_SGLANG_ARGV_FILE", str(argv_file))
    r = await run(prompt=prompt)
    assert r.status == "succeeded", r.log_tail
    received = json.loads(argv_file.read_text())
    if prompt.startswith("-"):
        assert f"--prompt={prompt}" in received
    else:
        assert received[received.index("--prompt") + 1] == prompt
    assert not Path("/tmp/x").exists() or Path("/tmp/x").stat().st_mtime < argv_file.stat().st_mtime - 60


async def test_secret_values_are_redacted_everywhere(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path, mode="print_secret")
    secret = "hf_SuperSecretValue12345"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("MY_SERVICE_API_KEY", "sk-another-secret-987")
    r = await run(argv=["--negative-prompt", "sk-another-secret-987"])
    assert r.status == "succeeded", r.log_tail
    text = r.model_dump_json()
    assert secret not in text and "sk-another-secret-987" not in text
    assert any("***" in line for line in r.log_tail)
    assert r.env.get("HF_TOKEN", "absent") is None  # the name is kept, never the value
    for path in isolated_state.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and b"sk-another-secret-987" not in data, path


async def test_cancel_kills_the_group_and_children(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path, mode="spawn_child")
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_SGLANG_CHILD_PID_FILE", str(pid_file))
    r = await run(wait_s=0)
    assert r.status in ("queued", "running")
    child = read_pid(pid_file)
    assert alive(child)
    c = await rg.cancel_run(r.run_id)
    assert c.status == "cancelled" and c.was == "running"
    assert not alive(child)
    rec = json.loads((Path(r.run_dir) / "run.json").read_text())
    assert not alive(rec["pid"])
    wait_until(lambda: not alive(rec["supervisor_pid"]), timeout=10)  # it exits once the run is closed
    final = await rg.get_run(r.run_id)
    assert final.status == "cancelled" and final.error.code == "cancelled"
    again = await rg.cancel_run(r.run_id)
    assert again.status == "cancelled" and "already ended" in again.message


async def test_timeout_kills_children_that_left_the_group_and_ignore_sigterm(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path, mode="spawn_child_setsid")
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_SGLANG_CHILD_PID_FILE", str(pid_file))
    r = await run(timeout_s=1.5, wait_s=20)
    assert r.status == "timeout"
    assert not alive(read_pid(pid_file))
    use_fake(monkeypatch, tmp_path, mode="hang_ignore_term")
    r = await run(timeout_s=0.5, wait_s=20)
    assert r.status == "timeout"
    rec = json.loads((Path(r.run_dir) / "run.json").read_text())
    assert not alive(rec["pid"])


async def test_children_left_by_a_successful_run_are_stopped(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path, mode="spawn_child_exit")
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_SGLANG_CHILD_PID_FILE", str(pid_file))
    r = await run()
    assert r.status == "succeeded"
    assert not alive(read_pid(pid_file))


async def test_input_errors_stop_before_starting(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path)
    with pytest.raises(ToolInputError) as e:
        await run(argv=["--output-path", "/etc"])
    assert e.value.problem.code == "path_outside_run"
    with pytest.raises(ToolInputError) as e:
        await run(argv=["sglang", "generate", "--model-path", "other/model"])
    assert e.value.problem.code == "conflicting_input"
    with pytest.raises(ToolInputError) as e:
        await run(argv=["--definitely-not-a-flag", "1"])
    assert e.value.problem.code == "unknown_flag"
    with pytest.raises(ToolInputError) as e:
        await run(gpus=[-1])
    assert e.value.problem.code == "bad_gpus"
    with pytest.raises(ToolInputError) as e:
        await rg.get_run("../../etc")
    assert e.value.problem.code == "unknown_run"
    assert not (isolated_state / "runs").exists() or not any((isolated_state / "runs").iterdir())
    # allowed on request: sglang itself then refuses it
    r = await run(argv=["--definitely-not-a-flag", "1"], allow_unknown_flags=True)
    assert r.status == "failed" and r.error.code == "bad_flag"
    assert "unknown_flag" in {w.code for w in r.warnings}


async def test_recommend_flags_argv_is_accepted(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path)
    r = await run(argv=["sglang", "generate", "--model-path", MODEL, "--num-inference-steps", "4", "--seed", "7"])
    assert r.status == "succeeded"
    assert r.argv.count("--model-path") == 1 and "--seed" in r.argv


@pytest.mark.parametrize("version", ["0.5.10.post1", "0.5.23"])
async def test_a_full_recommendation_runs_as_recommended(monkeypatch, tmp_path, version):
    """The product's path: recommend_flags, then run_generate with its argv, unchanged."""
    from sglang_diffusion_mcp.tools.recommend_flags import recommend_flags

    use_fake(monkeypatch, tmp_path, version=version)
    plan = recommend_flags(model=MODEL, hardware="1xH100", sglang_version=version, num_inference_steps=4)
    assert plan.env  # what the recommendation's command line sets, e.g. FLASHINFER_DISABLE_VERSION_CHECK=1
    r = await rg.run_generate(model=MODEL, prompt="a red fox", argv=plan.argv, env=plan.env, gpus=[0], wait_s=30)
    assert r.status == "succeeded", (r.error, r.log_tail)
    for flag in plan.argv[2:]:
        assert flag in r.argv
    for name, value in plan.env.items():
        assert r.env[name] == value and f"{name}={value}" in r.command


@pytest.mark.parametrize("version, env_name", [("0.5.10.post1", "SGLANG_TORCH_PROFILER_DIR"),
                                               ("0.5.23", "SGLANG_DIFFUSION_TORCH_PROFILER_DIR")])
async def test_profile_writes_traces_into_the_run_folder(monkeypatch, tmp_path, version, env_name):
    use_fake(monkeypatch, tmp_path, version=version)
    r = await run(profile=True)
    assert r.status == "succeeded" and "--profile" in r.argv
    assert env_name in {a.name for a in r.additions}
    assert len(r.trace_paths) == 1 and r.trace_paths[0].startswith(str(Path(r.log_path).parent))
    assert "profiled_run" in {w.code for w in r.warnings}
    meta = json.loads(Path(r.perf_dump_path + ".meta.json").read_text())
    assert meta["profile"] is True


async def test_relative_paths_survive_the_run_folder_as_working_directory(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cat.png").write_bytes(b"png")
    argv_file = tmp_path / "argv.json"
    monkeypatch.setenv("FAKE_SGLANG_ARGV_FILE", str(argv_file))
    monkeypatch.setattr("sglang_diffusion_mcp.tools.runs.integration.check_command", lambda *a, **k: ([], []))
    r = await run(argv=["--image-path", "cat.png", "--negative-prompt", "cat.png"])
    assert r.status == "succeeded"
    seen = json.loads(argv_file.read_text())
    assert seen[seen.index("--image-path") + 1] == str(tmp_path / "cat.png")
    assert seen[seen.index("--negative-prompt") + 1] == "cat.png"  # text, not a path


async def test_missing_sglang_says_how_to_install(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path)
    monkeypatch.setenv("SGLANG_DIFFUSION_MCP_SGLANG", str(tmp_path / "no" / "sglang"))
    with pytest.raises(ToolInputError) as e:
        await run()
    assert e.value.problem.code == "sglang_not_found" and "pip install" in e.value.problem.fix
    monkeypatch.delenv("SGLANG_DIFFUSION_MCP_SGLANG")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolInputError) as e:
        await run()
    assert "PATH" in e.value.problem.message


async def test_gated_model_precheck(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path)
    gated = "black-forest-labs/FLUX.1-dev"
    with pytest.raises(ToolInputError) as e:
        await run(model=gated)
    assert e.value.problem.code == "gated_model" and "HF_TOKEN" in e.value.problem.fix
    snapshot = tmp_path / "hf" / "hub" / "models--black-forest-labs--FLUX.1-dev" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    assert (await run(model=gated)).status == "succeeded"  # a cached snapshot is enough
    import shutil

    shutil.rmtree(tmp_path / "hf" / "hub")
    (tmp_path / "hf" / "token").write_text("hf_from_file_abcdef")
    assert (await run(model=gated)).status == "succeeded"  # so is a token file


async def test_disk_space_precheck(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path)
    monkeypatch.setattr("sglang_diffusion_mcp.tools.runs.prechecks._free_gb", lambda path: 0.2)
    with pytest.raises(ToolInputError) as e:
        await run()
    assert e.value.problem.code == "disk_full"


async def test_output_dir_and_existing_cuda_visible_devices(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    out = tmp_path / "outs"
    r = await run(gpus=None, output_dir=str(out))
    assert r.status == "succeeded"
    assert r.gpus == [3, 5] and "CUDA_VISIBLE_DEVICES" not in {a.name for a in r.additions}
    assert r.outputs and all(Path(p).parent == out for p in r.outputs)
    r = await run(gpus=[1], output_dir=str(out))
    assert r.gpus == [5] and r.env["CUDA_VISIBLE_DEVICES"] == "5"


async def test_history_is_recorded_and_listed(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path)
    ok = await run(width=512, height=512)
    use_fake(monkeypatch, tmp_path, mode="oom")
    bad = await run(model="Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
    db = sqlite3.connect(isolated_state / "history.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = {r[0]: r[1:] for r in db.execute("SELECT run_id, status, error_code, model, width, gpu_count, "
                                            "sglang_version, env_json FROM runs")}
    assert rows[ok.run_id][:6] == ("succeeded", None, MODEL, 512, 1, "0.5.23")
    assert rows[bad.run_id][:2] == ("failed", "oom")
    env = json.loads(rows[ok.run_id][6])
    assert env["SGLANG_DIFFUSION_SYNC_STAGE_PROFILING"] == "1"
    listed = rg.list_runs()
    assert listed.total == 2 and [r.run_id for r in listed.runs] == [bad.run_id, ok.run_id]
    assert [r.run_id for r in rg.list_runs(status="failed").runs] == [bad.run_id]
    assert [r.run_id for r in rg.list_runs(model=MODEL.lower()).runs] == [ok.run_id]
    capped = rg.list_runs(limit=1)
    assert capped.truncated and len(capped.runs) == 1 and capped.total == 2
    with pytest.raises(ToolInputError):
        rg.list_runs(status="nonsense")
    assert os.path.exists(isolated_state / "runs" / ok.run_id / "run.json")


async def test_idle_gpus_from_detection_and_hardware_in_history(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path)
    monkeypatch.setattr(rg.integration, "detect_idle_gpus", lambda: ([2, 3], "H100", None))
    r = await run(gpus=None, argv=["--num-gpus", "2"])
    assert r.status == "succeeded"
    assert r.gpus == [2, 3] and r.env["CUDA_VISIBLE_DEVICES"] == "2,3" and r.hardware == "2xH100"
    assert [x.run_id for x in rg.list_runs(hardware="2xh100").runs] == [r.run_id]
    assert rg.list_runs(hardware="8xB200").total == 0
    monkeypatch.setattr(rg.integration, "detect_idle_gpus", lambda: (None, None, None))
    r = await run(gpus=None)
    assert r.gpus == [0] and "gpus_not_detected" in {w.code for w in r.warnings}


async def test_long_log_lines_never_bloat_the_result(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path, mode="crash")
    monkeypatch.setenv("FAKE_SGLANG_LONG_LINE", "2000000")
    r = await run()
    assert r.status == "failed" and r.error.code == "unknown"
    assert len(r.model_dump_json()) < 20_000
    assert all(len(line) <= 400 for line in r.log_tail) and sum(map(len, r.log_tail)) <= 6100
    assert len(r.error.message) <= 500 and "…[cut]" in r.error.message
    assert len(r.server_args["long_value"]) == 400
    assert Path(r.log_path).stat().st_size > 4_000_000  # the whole log stays on disk


async def test_a_stale_cached_version_is_dropped_when_sglang_refuses_an_added_flag(monkeypatch, tmp_path,
                                                                                   isolated_state):
    use_fake(monkeypatch, tmp_path, version="0.5.23")
    assert (await run()).status == "succeeded"  # caches 0.5.23
    monkeypatch.setenv("FAKE_SGLANG_VERSION", "0.5.9")  # sglang replaced under the same command
    r = await run()
    assert r.status == "failed" and r.error.code == "bad_flag" and r.error.flag == "--warmup-mode"
    assert "version may have changed" in r.error.fix and "run again" in r.error.fix
    assert not (isolated_state / "sglang_version.json").exists()
    again = await run()
    assert again.status == "succeeded" and again.sglang_version == "0.5.9"
    # a flag the user chose is the user's problem: the cache stays
    use_fake(monkeypatch, tmp_path, version="0.5.9")
    r = await run(argv=["--definitely-not-a-flag", "1"], allow_unknown_flags=True)
    assert r.error.code == "bad_flag" and "version may have changed" not in r.error.fix
    assert (isolated_state / "sglang_version.json").exists()


async def test_output_dir_that_is_not_writable_and_the_state_home_space(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path)
    with pytest.raises(ToolInputError) as e:
        await run(output_dir="/proc/x/outputs")
    assert e.value.problem.code == "output_dir_not_writable" and "not a writable folder" in e.value.problem.message
    from sglang_diffusion_mcp.tools.runs import prechecks

    monkeypatch.setattr(prechecks, "_free_gb", lambda path: 0.05 if str(path).startswith(str(isolated_state)) else 500.0)
    with pytest.raises(ToolInputError) as e:
        await run(output_dir=str(tmp_path / "outs"))
    assert e.value.problem.code == "disk_full" and str(isolated_state) in e.value.problem.message


@pytest.mark.parametrize("version,warned", [("0.5.23", True), ("0.5.10.post1", True), ("0.5.9", False)])
async def test_a_user_log_level_that_hides_the_vram_analysis_is_warned(monkeypatch, tmp_path, version, warned):
    use_fake(monkeypatch, tmp_path, version=version)
    r = await run(argv=["--log-level", "info"], wait_s=0)
    codes = {w.code: w for w in r.warnings}
    assert ("vram_analysis_off" in codes) is warned
    if warned:
        assert "--log-level debug" in codes["vram_analysis_off"].fix
    await rg.get_run(r.run_id, wait_s=30)


async def test_vram_advice_is_relative_to_the_command_that_ran(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path, version="0.5.10.post1")
    r = await run(argv=["--text-encoder-cpu-offload", "true"])
    assert r.status == "succeeded"
    improved = r.vram["improved_command"]["argv"]
    assert improved[:2] == ["sglang", "generate"] and improved[improved.index("--model-path") + 1] == MODEL
    assert improved[improved.index("--text-encoder-cpu-offload") + 1] == "false" and "true" not in improved
    assert "--perf-dump-path" not in improved and "--output-path" not in improved  # run_generate refuses them


async def test_env_input_reaches_sglang_and_is_recorded_by_the_allowlist(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path, mode="print_secret")
    env_file = tmp_path / "env.json"
    monkeypatch.setenv("FAKE_SGLANG_ENV_FILE", str(env_file))
    monkeypatch.setenv("FAKE_SGLANG_ECHO_ENV", "SERVICE_TOKEN")
    monkeypatch.setenv("UNRELATED_SHELL_VAR", "1")
    monkeypatch.setenv("TORCH_SHOW_CPP_STACKTRACES", "1")
    secret = "tok-caller-secret-4242"
    r = await run(env={"SGLANG_CACHE_DIT_ENABLED": "true", "MY_FLAG": "x", "SERVICE_TOKEN": secret})
    assert r.status == "succeeded", r.log_tail
    seen = json.loads(env_file.read_text())
    assert seen["SGLANG_CACHE_DIT_ENABLED"] == "true" and seen["SERVICE_TOKEN"] == secret
    assert r.env["SGLANG_CACHE_DIT_ENABLED"] == "true"
    assert r.env["MY_FLAG"] is None and r.env["SERVICE_TOKEN"] is None and r.env["TORCH_SHOW_CPP_STACKTRACES"] is None
    assert "UNRELATED_SHELL_VAR" not in r.env
    assert "SGLANG_CACHE_DIT_ENABLED=true" in r.command and "SERVICE_TOKEN=***" in r.command
    assert secret not in r.model_dump_json()
    for path in isolated_state.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    row = sqlite3.connect(isolated_state / "history.sqlite").execute("SELECT env_json FROM runs").fetchone()[0]
    assert json.loads(row)["SGLANG_CACHE_DIT_ENABLED"] == "true"
    for bad, code in (({"1BAD": "x"}, "bad_input"), ({"A": 1}, "bad_input"), ({"A": "x\0y"}, "bad_input"),
                      ("A=1", "bad_input"), ({"CUDA_VISIBLE_DEVICES": "1"}, "conflicting_input")):
        with pytest.raises(ToolInputError) as e:
            await run(env=bad)
        assert e.value.problem.code == code and e.value.problem.flag == "env"


@pytest.mark.parametrize("kwargs, flag", [
    ({"prompt": "a\x00b"}, None),
    ({"prompt": "p" * 30_000}, "prompt"),
    ({"env": {"PATH": ""}}, "env"),
])
async def test_runs_that_cannot_start_are_refused_up_front(monkeypatch, tmp_path, kwargs, flag):
    use_fake(monkeypatch, tmp_path)
    with pytest.raises(ToolInputError) as info:
        await run(**kwargs)
    assert info.value.problem.code == "bad_input" and info.value.problem.fix
