"""Shared test setup: every test gets its own state directory; async tests run on asyncio."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    home = tmp_path / "state"
    monkeypatch.setenv("SGLANG_DIFFUSION_MCP_HOME", str(home))
    return home
