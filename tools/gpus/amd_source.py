"""AMD GPUs are only noticed (through amd-smi), never analysed."""

from __future__ import annotations

import json

from ..problems import Problem
from . import runner


def _count(stdout: str) -> int:
    try:
        doc = json.loads(stdout)
    except ValueError:  # older amd-smi without --json: count "GPU: n" lines
        return sum(1 for line in stdout.splitlines() if line.strip().startswith("GPU:"))
    if isinstance(doc, dict):  # some releases wrap the list
        doc = next((v for v in doc.values() if isinstance(v, list)), [])
    return len(doc) if isinstance(doc, list) else 0


def amd_gpus(timeout_s: float) -> tuple[int, list[Problem]]:
    if runner.which("amd-smi") is None:
        return 0, []
    res = runner.run(["amd-smi", "list", "--json"], timeout_s)
    count = _count(res.stdout) if res.stdout else 0
    if count:
        return count, [Problem(code="amd_gpus_not_analysed", message=f"amd-smi reports {count} AMD GPU(s). They were "
                               "seen but are not analysed: sglang-diffusion-mcp supports NVIDIA GPUs only for now.",
                               fix="Use an NVIDIA host, or plan with a hardware spec (e.g. 8xMI300X resolves, "
                                   "flagged as not supported yet).")]
    if res.error:
        return 0, [Problem(code="amd_smi_failed", message=f"amd-smi is installed but listed no GPU: {res.error}. "
                           "AMD GPUs, if any, are not analysed.")]
    return 0, []
