"""The console script: stdio serving with a clean stdout, `tools`, `call`, `--version`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sglang_diffusion_mcp import __version__
from sglang_diffusion_mcp.server.tool_table import TOOLS

SCRIPT = str(Path(sys.executable).with_name("sglang-diffusion-mcp"))


def run_cli(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, **kw)


@pytest.fixture
def poisoned_env(tmp_path):
    """torch and sglang modules that kill the process if anything imports them."""
    for name in ("torch", "sglang"):
        pkg = tmp_path / "poison" / name
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("import os, sys\nsys.stderr.write('imported " + name + "')\nos._exit(97)\n")
    return {"PYTHONPATH": str(tmp_path / "poison")}


def test_stdio_serves_protocol_only_and_never_imports_torch_or_sglang(poisoned_env):
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "query_knowledge", "arguments": {}}},
    ]
    proc = subprocess.Popen([SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **poisoned_env})
    messages = []
    try:
        for request in requests:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            if "id" in request:  # read until its answer; every stdout line must be a JSON-RPC message
                while True:
                    line = proc.stdout.readline()
                    assert line, f"server closed stdout: {proc.stderr.read()}"
                    messages.append(json.loads(line))
                    if messages[-1].get("id") == request["id"]:
                        break
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        rest = proc.stdout.read()
    assert proc.returncode != 97, proc.stderr.read()
    assert rest.strip() == ""
    assert all(m.get("jsonrpc") == "2.0" for m in messages)
    by_id = {m.get("id"): m for m in messages}
    assert {t["name"] for t in by_id[2]["result"]["tools"]} == {s.name for s in TOOLS}
    assert by_id[3]["result"]["structuredContent"]["kinds"]


def test_tools_lists_one_line_per_tool():
    proc = run_cli("tools")
    assert proc.returncode == 0
    lines = proc.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [s.name for s in TOOLS]


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_call_prints_structured_json(poisoned_env):
    proc = run_cli("call", "query_knowledge", "--json", '{"kind": "tips", "limit": 1}', env=poisoned_env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["total"] >= 1 and len(result["entries"]) == 1


def test_call_tool_error_goes_to_stderr_with_exit_1():
    proc = run_cli("call", "query_knowledge", "--json", '{"id": "no-such-entry"}')
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "unknown_entry" in proc.stderr and "Fix:" in proc.stderr


@pytest.mark.parametrize("args, needle", [
    (["call", "no_such_tool"], "unknown tool"),
    (["call", "query_knowledge", "--json", "{not json"], "not valid JSON"),
    (["call", "query_knowledge", "--json", "[1, 2]"], "JSON object"),
])
def test_call_usage_errors_exit_2_with_one_line(args, needle):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_streamable_http_transport_serves_the_tools(tmp_path):
    import socket
    import time

    import anyio
    from mcp import Client

    with socket.socket() as s:  # a free loopback port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([SCRIPT, "serve", "--transport", "streamable-http", "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    async def list_over_http() -> set[str]:
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            return {t.name for t in (await client.list_tools()).tools}

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                names = anyio.run(list_over_http)
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        assert names == {spec.name for spec in TOOLS}
    finally:
        proc.terminate()
        proc.wait(timeout=15)
