"""Match a reported GPU name (and memory) to a knowledge-base GPU entry.

Exact names first; otherwise every `name_tokens` word must appear and no `name_excludes` word may, so
"NVIDIA RTX PRO 6000 Blackwell ..." can never become the RTX 6000 Ada. SXM/PCIe/NVL comes from the name and
memory, never from the link count.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Literal

from ...knowledge import loader
from ...knowledge.schema import Gpu

Match = Literal["exact", "approximate"]


def name_tokens(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", name.lower())) - {""}


@cache
def _exact_names() -> dict[str, Gpu]:
    return {n.strip().casefold(): e for e in gpu_entries() for n in e.nvml_names}


def gpu_entries() -> tuple[Gpu, ...]:
    return loader.load("gpus")  # type: ignore[return-value]


def match_gpu(name: str, memory_mib: int | None = None) -> tuple[Gpu | None, Match | None]:
    exact = _exact_names().get(name.strip().casefold())
    if exact is not None:
        return exact, "exact"
    tokens = name_tokens(name)
    candidates = [e for e in gpu_entries()
                  if all(t in tokens for t in e.name_tokens) and not any(x in tokens for x in e.name_excludes)]
    if not candidates:
        return None, None

    def rank(e: Gpu) -> tuple:
        gap = abs(e.memory_mib - memory_mib) if (memory_mib and e.memory_mib) else 0
        return (-len(e.name_tokens), gap, not e.family_default)

    return min(candidates, key=rank), "approximate"
