"""Runs outlive servers: poll and cancel through the MCP client and the CLI, reconcile, lock GPUs across processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import Client

sys.path.insert(0, str(Path(__file__).parent))
from run_helpers import CLI, alive, cli_json, record, stop_leftover_runs, use_fake, wait_until  # noqa: E402

from sglang_diffusion_mcp.server.app import build_server  # noqa: E402
from sglang_diffusion_mcp.tools import run_generate as rg  # noqa: E402

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_leftover_processes(isolated_state):
    yield
    stop_leftover_runs(isolated_state)
ARGS = {"model": "Qwen/Qwen-Image", "prompt": "a lighthouse", "gpus": [0], "num_inference_steps": 4}


async def test_wait_poll_cancel_through_the_mcp_client(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path, mode="hang")
    async with Client(build_server()) as client:
        started = await client.call_tool("run_generate", ARGS | {"wait_s": 0.3})
        assert not started.is_error, started.content
        run = started.structured_content
        assert run["status"] == "running" and run["run_id"]
        polled = (await client.call_tool("get_run", {"run_id": run["run_id"], "wait_s": 0.2})).structured_content
        assert polled["status"] == "running" and polled["phase"] == "loading" and 0 < polled["progress"] < 0.2
        cancelled = await client.call_tool("cancel_run", {"run_id": run["run_id"]})
        assert cancelled.structured_content["status"] == "cancelled"
        final = (await client.call_tool("get_run", {"run_id": run["run_id"]})).structured_content
        assert final["status"] == "cancelled" and final["error"]["code"] == "cancelled"
        unknown = await client.call_tool("get_run", {"run_id": "nope"})
        assert unknown.is_error and "unknown_run" in unknown.content[0].text


async def test_progress_notifications_follow_the_log(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path, step_s=0.05)
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress, total, message):
        seen.append((progress, message))

    async with Client(build_server()) as client:
        result = await client.call_tool("run_generate", ARGS | {"num_inference_steps": 12, "wait_s": 30},
                                        progress_callback=on_progress)
    assert result.structured_content["status"] == "succeeded"
    values = [p for p, _ in seen]
    assert values == sorted(values) and values[-1] == 1.0
    messages = " ".join(m or "" for _, m in seen)
    assert "denoising step" in messages


async def test_poll_and_cancel_from_a_second_process_via_the_cli(monkeypatch, tmp_path):
    use_fake(monkeypatch, tmp_path, mode="hang")
    run = await rg.run_generate(**ARGS, wait_s=0)
    polled = cli_json("get_run", {"run_id": run.run_id, "wait_s": 0.5})
    assert polled["status"] == "running"
    cancelled = cli_json("cancel_run", {"run_id": run.run_id})
    assert cancelled["status"] == "cancelled"
    assert (await rg.get_run(run.run_id)).status == "cancelled"
    # and a run that finishes while only the CLI polls
    use_fake(monkeypatch, tmp_path, step_s=0.05)
    run = await rg.run_generate(**ARGS, wait_s=0)
    done = cli_json("get_run", {"run_id": run.run_id, "wait_s": 30})
    assert done["status"] == "succeeded" and done["perf"]["steps"]["count"] == 4


async def test_run_survives_a_killed_server_and_is_reconciled(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path, mode="hang")
    server = subprocess.Popen([CLI, "call", "run_generate", "--json", json.dumps(ARGS | {"wait_s": 60})],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    runs = isolated_state / "runs"
    run_id = wait_until(lambda: runs.exists() and next((p.name for p in runs.iterdir()
                                                        if (p / "run.json").exists()), None))
    wait_until(lambda: record(isolated_state, run_id).get("status") == "running")
    server.kill()  # the IDE restarts its server: the run goes on
    server.communicate()
    rec = record(isolated_state, run_id)
    assert alive(rec["pid"]) and alive(rec["supervisor_pid"])
    assert (await rg.get_run(run_id)).status == "running"
    os.kill(rec["supervisor_pid"], signal.SIGKILL)  # now the run's supervisor vanishes too
    wait_until(lambda: not alive(rec["supervisor_pid"]))
    build_server()  # startup reconciles
    rec = record(isolated_state, run_id)
    assert rec["status"] == "interrupted"
    assert not alive(rec["pid"])  # what it left running is stopped
    assert rg.list_runs(status="interrupted").runs[0].run_id == run_id


async def test_a_run_that_ended_unwatched_is_parsed_and_closed_at_startup(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path)
    r = await rg.run_generate(**ARGS, wait_s=30)
    assert r.status == "succeeded"
    path = isolated_state / "runs" / r.run_id / "run.json"
    rec = json.loads(path.read_text())
    rec.update(status="running", finalized=False, result=None)  # as if the supervisor died right after the exit
    path.write_text(json.dumps(rec))
    import sqlite3

    db = sqlite3.connect(isolated_state / "history.sqlite")
    db.execute("UPDATE runs SET status='running' WHERE run_id=?", (r.run_id,))
    db.commit()
    db.close()
    build_server()
    assert record(isolated_state, r.run_id)["status"] == "succeeded"
    assert rg.list_runs().runs[0].status == "succeeded"


def _start(arguments: dict) -> subprocess.Popen:
    return subprocess.Popen([CLI, "call", "run_generate", "--json", json.dumps(arguments)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))


async def test_gpu_locks_hold_across_server_processes(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path, mode="hang")
    first = json.loads(_start(ARGS | {"wait_s": 0}).communicate()[0])  # another server process holds GPU 0
    use_fake(monkeypatch, tmp_path)
    second = await rg.run_generate(**ARGS, wait_s=0.5)
    assert second.status == "queued"
    assert second.waiting_for == f"waiting for GPU 0 (in use by run {first['run_id']})"
    assert (await rg.cancel_run(first["run_id"])).status == "cancelled"
    a = await rg.get_run(first["run_id"])
    b = await rg.get_run(second.run_id, wait_s=30)
    assert b.status == "succeeded"
    assert b.started_at >= a.ended_at  # never on the GPU together
    third = await rg.run_generate(**ARGS | {"gpus": [1]}, wait_s=30)  # another GPU does not wait
    assert third.status == "succeeded"


async def test_shared_gpus_when_allowed(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path, mode="hang")
    shared = ARGS | {"wait_s": 0, "allow_shared_gpus": True}
    first = json.loads(_start(shared).communicate()[0])
    second = await rg.run_generate(**shared)
    wait_until(lambda: record(isolated_state, second.run_id).get("status") == "running")
    assert record(isolated_state, first["run_id"]).get("status") == "running"  # both at once
    exclusive = await rg.run_generate(**ARGS, wait_s=0.3)  # but not with a run that does not share
    assert exclusive.status == "queued"
    for run_id in (first["run_id"], second.run_id, exclusive.run_id):
        assert (await rg.cancel_run(run_id)).status == "cancelled"


async def test_queued_run_can_be_cancelled(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path, mode="hang")
    holder = await rg.run_generate(**ARGS, wait_s=0)
    wait_until(lambda: record(isolated_state, holder.run_id).get("status") == "running")
    started = await rg.run_generate(**ARGS, wait_s=0)
    # a loaded machine may take a while to start the supervisor: wait for it to report the queue
    wait_until(lambda: record(isolated_state, started.run_id).get("waiting_for"))
    waiting = await rg.get_run(started.run_id)
    assert waiting.status == "queued" and "GPU 0" in waiting.waiting_for
    assert (await rg.cancel_run(waiting.run_id)).status == "cancelled"
    assert (await rg.cancel_run(holder.run_id)).status == "cancelled"
    t0 = time.monotonic()
    free_again = await rg.run_generate(**ARGS, wait_s=0.5)  # the GPU is free again: no wait
    assert free_again.status == "running" and time.monotonic() - t0 < 10
    assert (await rg.cancel_run(free_again.run_id)).status == "cancelled"


SECRET, OTHER_SECRET = "hf_LifecycleSecret0987654321", "sk-caller-passed-secret-5555"


def _no_secret_under(home: Path) -> None:
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and OTHER_SECRET.encode() not in data, path


_SECOND_PROCESS = """
import asyncio, json, sys
from sglang_diffusion_mcp.tools import run_generate as rg

async def main(cancel, killed):
    await rg.cancel_run(cancel)
    print(json.dumps([(await rg.get_run(run_id)).model_dump(mode="json") for run_id in (cancel, killed)]))

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_second_process_without_the_secret_never_sees_it(monkeypatch, tmp_path, isolated_state):
    """The log is written redacted by the supervisor: readers need no secret env, even mid-run or after a kill."""
    use_fake(monkeypatch, tmp_path, mode="hang")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("FAKE_SGLANG_ECHO_ENV", "HF_TOKEN,CALLER_API_KEY")
    plain_env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}  # the second process has no secret
    runs = []
    for gpu in (0, 1):
        run = await rg.run_generate(**(ARGS | {"gpus": [gpu]}), env={"CALLER_API_KEY": OTHER_SECRET}, wait_s=0)
        log = isolated_state / "runs" / run.run_id / "sglang-1.log"
        wait_until(lambda: log.exists() and log.read_bytes().count(b"(echoed)") == 2 and b"20%" in log.read_bytes())
        runs.append(run.run_id)
    polled = cli_json("get_run", {"run_id": runs[0]}, env=plain_env)  # mid-run, from the CLI
    assert polled["status"] == "running" and any("***" in line for line in polled["log_tail"])
    assert SECRET not in json.dumps(polled) and OTHER_SECRET not in json.dumps(polled)
    _no_secret_under(isolated_state)
    # the second run's supervisor is killed mid-run: what it wrote stays redacted, reconcile included
    rec = record(isolated_state, runs[1])
    os.kill(rec["supervisor_pid"], signal.SIGKILL)
    wait_until(lambda: not alive(rec["supervisor_pid"]))
    # the end, closed by a process without the secret: cancel one run, reconcile the other
    out = subprocess.run([sys.executable, "-c", _SECOND_PROCESS, *runs], capture_output=True, text=True,
                         env=plain_env, timeout=60)
    assert out.returncode == 0, out.stderr
    cancelled, interrupted = json.loads(out.stdout)
    assert cancelled["status"] == "cancelled" and interrupted["status"] == "interrupted" and not alive(rec["pid"])
    assert any("***" in line for line in cancelled["log_tail"] + interrupted["log_tail"])
    assert SECRET not in out.stdout and OTHER_SECRET not in out.stdout
    _no_secret_under(isolated_state)


async def test_list_runs_filters_active_runs_by_their_current_status(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path, mode="hang")
    run = await rg.run_generate(**ARGS, wait_s=0)
    wait_until(lambda: record(isolated_state, run.run_id).get("status") == "running")
    assert [r.run_id for r in rg.list_runs(status="running").runs] == [run.run_id]
    assert rg.list_runs(status="running").total == 1 and rg.list_runs(status="queued").total == 0
    assert (await rg.cancel_run(run.run_id)).status == "cancelled"
    assert rg.list_runs(status="running").total == 0
    assert [r.run_id for r in rg.list_runs(status="cancelled").runs] == [run.run_id]


async def test_automatic_gpu_choice_skips_gpus_other_runs_hold(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path, mode="hang")
    monkeypatch.setattr(rg.integration, "detect_idle_gpus", lambda: ([0, 1, 2, 3], "H100", None))
    started = [await rg.run_generate(**(ARGS | {"gpus": None}), wait_s=0) for _ in range(3)]  # back to back
    assert [r.gpus for r in started] == [[0], [1], [2]]
    for r in started:
        wait_until(lambda: record(isolated_state, r.run_id).get("status") == "running")  # none queues
    for r in started:
        assert (await rg.cancel_run(r.run_id)).status == "cancelled"


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


async def test_finished_supervisors_are_reaped_by_get_run_and_list_runs(monkeypatch, tmp_path, isolated_state):
    use_fake(monkeypatch, tmp_path)
    for reader in ("get_run", "list_runs"):
        run = await rg.run_generate(**ARGS, wait_s=30)
        assert run.status == "succeeded"
        pid = record(isolated_state, run.run_id)["supervisor_pid"]
        wait_until(lambda: _state(pid) in ("Z", None))  # exited; a zombie until its parent (us) reaps it
        if reader == "get_run":
            await rg.get_run(run.run_id)
        else:
            rg.list_runs()
        assert _state(pid) is None
