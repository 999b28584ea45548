"""The one table of tools the server registers. A tool is listed here once it works."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..tools.query_knowledge import query_knowledge


@dataclass(frozen=True)
class ToolSpec:
    fn: Callable[..., Any]
    title: str
    read_only: bool
    destructive: bool = False
    idempotent: bool = True
    open_world: bool = False

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def summary(self) -> str:
        return " ".join((self.fn.__doc__ or "").strip().split("\n\n")[0].split())


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(query_knowledge, "Query the knowledge base", read_only=True),
)
