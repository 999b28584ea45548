"""Command line: serve MCP (stdio by default, or streamable HTTP), list tools, or call one tool."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .. import __version__
from .tool_table import TOOLS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sglang-diffusion-mcp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sglang-diffusion-mcp {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="Serve MCP (stdio unless told otherwise).")
    serve.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    sub.add_parser("tools", help="List the tools, one line each.")
    call = sub.add_parser("call", help="Run one tool and print its structured result as JSON.")
    call.add_argument("tool")
    call.add_argument("--json", dest="arguments", default="{}", help="The tool's arguments as a JSON object.")
    return parser


def _call(tool: str, arguments: str) -> int:
    import anyio
    from mcp.server.mcpserver.exceptions import ToolError

    from .app import build_server

    names = [spec.name for spec in TOOLS]
    if tool not in names:
        print(f"sglang-diffusion-mcp: unknown tool {tool!r}; known tools: {', '.join(names)}", file=sys.stderr)
        return 2
    try:
        args = json.loads(arguments)
    except json.JSONDecodeError as exc:
        print(f"sglang-diffusion-mcp: --json is not valid JSON ({exc.msg} at char {exc.pos})", file=sys.stderr)
        return 2
    if not isinstance(args, dict):
        print("sglang-diffusion-mcp: --json must be a JSON object of tool arguments", file=sys.stderr)
        return 2
    try:
        result = anyio.run(build_server().call_tool, tool, args)
    except ToolError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if result.is_error:
        print(" ".join(getattr(c, "text", "") for c in result.content), file=sys.stderr)
        return 1
    print(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    # stdout belongs to the protocol when serving on stdio: every log goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    if args.command == "tools":
        for spec in TOOLS:
            print(f"{spec.name}\t{spec.summary}")
        return 0
    if args.command == "call":
        return _call(args.tool, args.arguments)
    from .app import build_server

    server = build_server()
    if args.command == "serve" and args.transport == "streamable-http":
        server.run("streamable-http", host=args.host, port=args.port)
    else:
        server.run("stdio")
    return 0
