"""The MCP adapter through the in-memory client, in both protocol modes."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from sglang_diffusion_mcp.server.app import build_server
from sglang_diffusion_mcp.server.tool_table import TOOLS

pytestmark = pytest.mark.anyio
MODES = ["legacy", "2026-07-28"]


@pytest.mark.parametrize("mode", MODES)
async def test_tools_listed_with_schemas_and_annotations(mode):
    async with Client(build_server(), mode=mode) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    assert set(listed) == {spec.name for spec in TOOLS}
    for spec in TOOLS:
        tool = listed[spec.name]
        assert tool.output_schema and tool.output_schema.get("type") == "object"
        assert tool.annotations.read_only_hint is spec.read_only
        assert tool.annotations.destructive_hint is spec.destructive
        assert tool.annotations.idempotent_hint is spec.idempotent
        assert tool.description


@pytest.mark.parametrize("mode", MODES)
async def test_query_knowledge_returns_structured_content(mode):
    async with Client(build_server(), mode=mode) as client:
        result = await client.call_tool("query_knowledge", {})
    assert not result.is_error
    kinds = {k["kind"] for k in result.structured_content["kinds"]}
    assert {"options", "models", "gpus", "releases", "recipes", "tips", "evidence", "fast_paths"} <= kinds


@pytest.mark.parametrize("mode", MODES)
async def test_actionable_error_for_unknown_entry(mode):
    async with Client(build_server(), mode=mode) as client:
        result = await client.call_tool("query_knowledge", {"kind": "nonsense"})
    assert result.is_error
    text = result.content[0].text
    assert "unknown_kind" in text and "Fix:" in text and "options" in text


@pytest.mark.parametrize("mode", MODES)
async def test_malformed_arguments_are_a_tool_error_not_a_crash(mode):
    async with Client(build_server(), mode=mode) as client:
        bad = await client.call_tool("query_knowledge", {"limit": "many"})
        assert bad.is_error
        ok = await client.call_tool("query_knowledge", {"kind": "tips"})
        assert not ok.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_knowledge_resources(mode):
    async with Client(build_server(), mode=mode) as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert any("{kind}/{entry_id}" in t.uri_template for t in templates)
        listing = await client.read_resource("sglang-diffusion://knowledge/tips")
        entries = json.loads(listing.contents[0].text)["entries"]
        assert entries
        first = entries[0]["id"]
        one = await client.read_resource(f"sglang-diffusion://knowledge/tips/{first}")
        assert json.loads(one.contents[0].text)["id"] == first


@pytest.mark.parametrize("tool, args", [
    ("detect_gpus", {"snapshot_dir": "/" + "p" * 5000}),
    ("parse_vram_log", {"log_path": "/" + "p" * 5000}),
])
async def test_a_path_the_system_refuses_is_an_actionable_error(tool, args):
    async with Client(build_server()) as client:
        result = await client.call_tool(tool, args)
    text = result.content[0].text
    assert result.is_error and "internal_error" not in text and "Fix:" in text


async def test_errors_never_echo_megabytes_of_input():
    async with Client(build_server()) as client:
        result = await client.call_tool("recommend_flags", {"model": "flux.1-dev", "hardware": "x" * 200_000})
    assert result.is_error and len(result.content[0].text) < 5000
