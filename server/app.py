"""The MCP adapter: registers the tool table and the knowledge resources on an MCPServer."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import logging

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from .. import __version__
from ..knowledge.schema import KINDS
from ..tools.problems import ToolInputError
from ..tools.query_knowledge import URI_PREFIX, fetch, query_knowledge
from ..tools.run_generate import reconcile_all
from .tool_table import TOOLS, ToolSpec

log = logging.getLogger("sglang_diffusion_mcp")

INSTRUCTIONS = (
    "Choose, run and prove the fastest `sglang generate` command for a diffusion model, GPUs and a VRAM "
    "budget. Read the skill sglang-diffusion-mcp for the workflow. Knowledge entries are also resources "
    f"under {URI_PREFIX}/{{kind}}/{{id}}."
)


def _as_tool_error(spec: ToolSpec, exc: Exception) -> ToolError:
    if isinstance(exc, ToolInputError):
        return ToolError(exc.text)
    if isinstance(exc, OSError):  # a path the caller gave that the system refuses: theirs to fix
        where = f" ({str(exc.filename)[:200]})" if exc.filename else ""
        return ToolError(f"[os_error] {exc.strerror or exc}{where}. Fix: check the path or file you passed.")
    log.exception("tool %s failed", spec.name)
    return ToolError(f"[internal_error] {spec.name} failed unexpectedly ({type(exc).__name__}: {str(exc)[:500]}). "
                     "Fix: check the inputs; if they look right, report this with the server log (stderr).")


def guarded(spec: ToolSpec):
    """Wrap a tool so every failure reaches the caller as an actionable tool error, never a crash."""
    fn = spec.fn
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def run_async(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except ToolError:
                raise
            except Exception as exc:
                raise _as_tool_error(spec, exc) from exc
        return run_async

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ToolError:
            raise
        except Exception as exc:
            raise _as_tool_error(spec, exc) from exc
    return run


def with_progress(fn):
    """Tools that take a `progress` callback get the request's Context instead; progress goes to the client."""
    sig = inspect.signature(fn, eval_str=True)  # resolved types: the MCP SDK builds schemas from them
    if "progress" not in sig.parameters:
        return fn

    async def adapted(*args, ctx: Context | None = None, **kwargs):
        async def progress(done: float, total: float | None = None, message: str | None = None) -> None:
            if ctx is not None:
                await ctx.report_progress(done, total, message)
        return await fn(*args, progress=progress, **kwargs)

    params = [p for p in sig.parameters.values() if p.name != "progress"]
    params.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Context | None))
    adapted.__signature__ = sig.replace(parameters=params)
    adapted.__annotations__ = {p.name: p.annotation for p in params} | {"return": sig.return_annotation}
    adapted.__name__, adapted.__qualname__, adapted.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    adapted.__module__ = fn.__module__
    return adapted


def _register_resources(server: MCPServer) -> None:
    @server.resource(f"{URI_PREFIX}/{{kind}}", name="knowledge-kind", mime_type="application/json",
                     description=f"Entries of one knowledge kind ({', '.join(KINDS)}).")
    def list_kind(kind: str) -> str:
        return query_knowledge(kind=kind, limit=100).model_dump_json()

    @server.resource(f"{URI_PREFIX}/{{kind}}/{{entry_id}}", name="knowledge-entry", mime_type="application/json",
                     description="One knowledge entry, in full.")
    def get_entry(kind: str, entry_id: str) -> str:
        found_kind, entry = fetch(entry_id, kind)
        return json.dumps({"kind": found_kind, **entry.model_dump(mode="json")})


def build_server() -> MCPServer:
    server = MCPServer(name="sglang-diffusion-mcp", version=__version__, instructions=INSTRUCTIONS)
    try:  # close runs that ended while no server watched; mark vanished ones interrupted
        reconcile_all()
    except Exception:
        log.warning("reconciling old runs failed", exc_info=True)
    for spec in TOOLS:
        server.add_tool(
            guarded(dataclasses.replace(spec, fn=with_progress(spec.fn))),
            name=spec.name,
            title=spec.title,
            annotations=ToolAnnotations(
                title=spec.title, read_only_hint=spec.read_only, destructive_hint=spec.destructive,
                idempotent_hint=spec.idempotent, open_world_hint=spec.open_world,
            ),
            structured_output=True,
        )
    _register_resources(server)
    return server
