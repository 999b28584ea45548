"""Load SGLang's measured VRAM cases (tests/fixtures/vram_cases) as (model, workload, plan, measured)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sglang_diffusion_mcp.knowledge.models_lookup import identify_model
from sglang_diffusion_mcp.tools.planning.estimate import group_of
from sglang_diffusion_mcp.tools.planning.plan import Plan
from sglang_diffusion_mcp.tools.planning.workload import Workload

CASES = Path(__file__).parent / "fixtures" / "vram_cases"
MODES = {"resident": "resident", "layerwise-offload": "layerwise", "component-offload": "cpu_offload"}


def _mode(text: str) -> tuple[str, float | None]:
    mode = next((m for key, m in MODES.items() if text.startswith(key)), "resident")
    prefetch = re.search(r"prefetch (\d+(?:\.\d+)?)", text)
    return mode, float(prefetch.group(1)) if prefetch else None


def _first_int(value) -> int:
    """Some fields carry a note after the number ('~1024 (input-image aspect)')."""
    return int(re.search(r"\d+", str(value)).group())


def load_cases() -> list[dict]:
    out = []
    for path in sorted(CASES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text())["cases"]:
            model = identify_model(case["model"]).model
            roles = {c.name: group_of(c.role) for c in model.components}
            residency, prefetch = {}, 0.0
            for name, text in case["residency"].items():
                group = roles.get(name, "text_encoder" if name.startswith("text_encoder") else name)
                mode, pf = _mode(str(text))
                residency.setdefault(group, mode)
                prefetch = pf if pf is not None else prefetch
            par = case["parallel"]
            sp = int(par["sp"]) if str(par["sp"]).isdigit() else 1
            ring = int(par["ring"]) if str(par["ring"]).isdigit() else 1
            plan = Plan(num_gpus=case["gpu_count"], cfg_parallel=bool(par["cfg_parallel"]), tp=int(par["tp"]),
                        ulysses=max(1, sp // ring), ring=ring, fsdp=bool(par["fsdp"]), residency=residency,
                        prefetch=prefetch)
            width, height, frames, steps = (_first_int(case[k]) for k in ("width", "height", "num_frames", "steps"))
            workload = Workload(width=width, height=height, num_frames=frames, num_inference_steps=steps, guidance_scale=None,
                                negative_prompt=bool(case.get("uses_cfg")), uses_cfg=bool(case.get("uses_cfg")))
            out.append({"id": case["id"], "model": model, "workload": workload, "plan": plan,
                        "measured_gb": case["measured"]["runtime_peak_reserved_gib"],
                        "gpu_memory_gb": case["gpu_memory_gib"], "confidence": case["confidence"]})
    return out
