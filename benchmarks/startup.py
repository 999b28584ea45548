"""Startup: process start to first tools/list answer, this server vs a minimal MCPServer with one tool.

Both are launched the same way (`python -c ...`), interleaved. Target: median ratio <= 1.3.
Run: python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _stdio import time_to_tools_list  # noqa: E402

OURS = "from sglang_diffusion_mcp.server.cli import main; main([])"
MINIMAL = (
    "from mcp.server.mcpserver import MCPServer\n"
    "s = MCPServer('minimal')\n"
    "@s.tool()\n"
    "def echo(text: str) -> str:\n"
    "    return text\n"
    "s.run('stdio')\n"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    ours, minimal = [], []
    time_to_tools_list([sys.executable, "-c", OURS])  # warm the file cache for both
    time_to_tools_list([sys.executable, "-c", MINIMAL])
    for _ in range(runs):
        ours.append(time_to_tools_list([sys.executable, "-c", OURS]))
        minimal.append(time_to_tools_list([sys.executable, "-c", MINIMAL]))
    ratios = [o / m for o, m in zip(ours, minimal)]
    print(f"runs={runs}")
    print(f"minimal MCPServer: median {statistics.median(minimal) * 1000:.0f} ms")
    print(f"sglang-diffusion-mcp: median {statistics.median(ours) * 1000:.0f} ms")
    print(f"ratio median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}); target <= 1.30")


if __name__ == "__main__":
    main()
