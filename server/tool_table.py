"""The one table of tools the server registers. A tool is listed here once it works."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..tools.check_command import check_command
from ..tools.compare_perf import compare_perf
from ..tools.detect_gpus import detect_gpus
from ..tools.plan_kernel_handoff import plan_kernel_handoff
from ..tools.query_knowledge import query_knowledge
from ..tools.recommend_flags import recommend_flags
from ..tools.run_generate import cancel_run, get_run, list_runs, run_generate
from ..tools.vram_log import parse_vram_log


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
    ToolSpec(detect_gpus, "Detect GPUs, idle GPUs and their links", read_only=True),
    ToolSpec(recommend_flags, "Recommend the fastest valid sglang generate command", read_only=True),
    ToolSpec(check_command, "Check an sglang generate command", read_only=True),
    ToolSpec(compare_perf, "Compare sglang perf dumps", read_only=True),
    ToolSpec(parse_vram_log, "Read the VRAM analysis from an sglang log", read_only=True),
    ToolSpec(plan_kernel_handoff, "Plan kernel work from a slow run", read_only=True),
    ToolSpec(run_generate, "Run sglang generate, measured", read_only=False, idempotent=False, open_world=True),
    ToolSpec(get_run, "Poll a run", read_only=True),
    ToolSpec(cancel_run, "Cancel a run", read_only=False, destructive=True, idempotent=True),
    ToolSpec(list_runs, "List recorded runs", read_only=True),
)
