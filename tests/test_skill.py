"""The agent skill: valid frontmatter, the root copy identical, and in sync with the registered tools."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sglang_diffusion_mcp.server.tool_table import TOOLS

REPO = Path(__file__).resolve().parents[1]
SKILL = REPO / "skills" / "sglang-diffusion-mcp" / "SKILL.md"
ALL_PRODUCT_TOOLS = {"detect_gpus", "recommend_flags", "check_command", "run_generate", "get_run", "cancel_run",
                     "list_runs", "compare_perf", "parse_vram_log", "plan_kernel_handoff", "query_knowledge"}


def frontmatter(text: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "SKILL.md must start with YAML frontmatter between --- lines"
    return yaml.safe_load(match.group(1))


def test_root_copy_is_identical():
    assert (REPO / "SKILL.md").read_bytes() == SKILL.read_bytes()


def test_frontmatter_is_a_valid_agent_skill():
    meta = frontmatter(SKILL.read_text())
    assert meta["name"] == "sglang-diffusion-mcp" == SKILL.parent.name
    assert 0 < len(meta["description"]) < 1024
    assert "use" in meta["description"].lower()


def test_every_registered_tool_is_described():
    text = SKILL.read_text()
    for spec in TOOLS:
        assert f"`{spec.name}`" in text, f"SKILL.md does not describe {spec.name}"


def test_skill_names_no_tool_that_is_not_registered():
    mentioned = set(re.findall(r"`([a-z_]+)`", SKILL.read_text())) & ALL_PRODUCT_TOOLS
    assert mentioned <= {spec.name for spec in TOOLS}
