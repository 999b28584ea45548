"""sglang-diffusion-mcp: choose, run and prove the fastest `sglang generate` command.

Subpackages: `server` (MCP adapter, CLI, settings), `tools` (plain tool logic),
`knowledge` (data, schema, loader).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sglang-diffusion-mcp")
except PackageNotFoundError:  # running from an unusual layout
    __version__ = "0.0.0"
