"""Helpers for the run_generate tests: the fake sglang, waiting on files, checking processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

FAKE = Path(__file__).parent / "fake_sglang" / "fake_sglang.py"
CLI = shutil.which("sglang-diffusion-mcp", path=str(Path(sys.executable).parent)) or "sglang-diffusion-mcp"


def use_fake(monkeypatch, tmp_path: Path, mode: str = "succeed", version: str = "0.5.23", step_s: float = 0.002) -> None:
    monkeypatch.setenv("SGLANG_DIFFUSION_MCP_SGLANG", f"{sys.executable} {FAKE}")
    monkeypatch.setenv("FAKE_SGLANG_MODE", mode)
    monkeypatch.setenv("FAKE_SGLANG_VERSION", version)
    monkeypatch.setenv("FAKE_SGLANG_STEP_S", str(step_s))
    monkeypatch.setenv("SGLANG_DIFFUSION_MCP_KILL_GRACE_S", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # the version is cached per executable; the fake changes it by env, so forget it
    from sglang_diffusion_mcp.tools.runs import runner

    runner._version_cache.clear()
    home = os.environ.get("SGLANG_DIFFUSION_MCP_HOME")
    if home and os.path.exists(os.path.join(home, "sglang_version.json")):
        os.remove(os.path.join(home, "sglang_version.json"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                 "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)


def alive(pid: int) -> bool:
    """A live, non-zombie process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_until(check, timeout: float = 15.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def read_pid(path: Path, timeout: float = 15.0) -> int:
    return wait_until(lambda: path.exists() and path.read_text().strip() and int(path.read_text()), timeout)


def record(home: Path, run_id: str) -> dict:
    return json.loads((home / "runs" / run_id / "run.json").read_text())


def cli(*args: str, env: dict | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env or dict(os.environ),
                          timeout=timeout)


def cli_json(tool: str, arguments: dict, env: dict | None = None) -> dict:
    out = cli("call", tool, "--json", json.dumps(arguments), env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def stop_leftover_runs(home: Path) -> None:
    """Teardown: a failed test must not leave a fake sglang or supervisor running."""
    import signal

    from sglang_diffusion_mcp.tools.runs import runner

    for path in (home / "runs").glob("*/run.json") if (home / "runs").exists() else []:
        try:
            rec = json.loads(path.read_text())
        except ValueError:
            continue
        if rec.get("supervisor_pid") and alive(rec["supervisor_pid"]):
            os.kill(rec["supervisor_pid"], signal.SIGKILL)
        if rec.get("pgid") and alive(rec["pgid"]):
            runner.stop_group(rec["pgid"], grace_s=0.5)
        runner.sweep_marked(rec.get("run_id", "-"))
