"""Shared helper for benchmarks: time from process start to the first tools/list answer over stdio."""

from __future__ import annotations

import json
import subprocess
import time

HANDSHAKE = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]


def time_to_tools_list(argv: list[str]) -> float:
    """Seconds from spawning argv to reading the tools/list response."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for msg in HANDSHAKE:
            proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{argv} closed stdout before answering tools/list")
            if json.loads(line).get("id") == 2:
                return time.perf_counter() - start
    finally:
        proc.kill()
        proc.wait()
