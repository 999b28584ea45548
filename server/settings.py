"""Settings read from the environment (names fixed by PRODUCT.md)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

HOME_ENV = "SGLANG_DIFFUSION_MCP_HOME"
SGLANG_ENV = "SGLANG_DIFFUSION_MCP_SGLANG"


def state_home() -> Path:
    """Where run records, logs, perf dumps and history live; outside any plugin folder."""
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "sglang-diffusion-mcp"


def sglang_command() -> list[str]:
    """The sglang executable as an argv prefix: $SGLANG_DIFFUSION_MCP_SGLANG split shell-style, else `sglang`."""
    value = os.environ.get(SGLANG_ENV, "").strip()
    return shlex.split(value) if value else ["sglang"]
