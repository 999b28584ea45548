"""sglang-diffusion-mcp: choose, run and prove the fastest `sglang generate` command.

Subpackages: `server` (MCP adapter, CLI, settings), `tools` (plain tool logic),
`knowledge` (data, schema, loader).
"""

# The single source of the version (pyproject reads it); a literal, so startup reads no package metadata.
__version__ = "0.1.0"
