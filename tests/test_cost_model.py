"""The latency model against speedups SGLang's CI measured on H100 (knowledge/data/evidence.yaml, ev-ci-h100-*).

The model only ranks plans, so what must hold is the size and order of each measured gain, not absolute times."""

from __future__ import annotations

import pytest

from sglang_diffusion_mcp.knowledge import loader
from sglang_diffusion_mcp.knowledge.models_lookup import identify_model
from sglang_diffusion_mcp.tools.hardware_spec import parse_hardware_spec
from sglang_diffusion_mcp.tools.planning.context import PlanContext
from sglang_diffusion_mcp.tools.planning.plan import Plan
from sglang_diffusion_mcp.tools.planning.search import score
from sglang_diffusion_mcp.tools.planning.workload import resolve_workload

RESIDENT = {"dit": "resident", "text_encoder": "resident", "vae": "resident"}
TOLERANCE = 0.20  # predicted speedup within 20 % of the measured one


def step_time(model: str, plan: Plan, width: int, height: int, frames: int, steps: int) -> float:
    entry = identify_model(model).model
    hardware = parse_hardware_spec("2xH100")
    workload = resolve_workload(entry, "0.5.23", width=width, height=height, num_inference_steps=steps,
                                num_frames=frames if entry.modality == "video" else None)
    ctx = PlanContext(model=entry, workload=workload, hardware=hardware, version="0.5.23",
                      budget_gb=hardware.memory_gb)
    cost = score(ctx, plan).cost
    return (cost.compute_s + cost.comm_s + cost.offload_s) / steps


CASES = [  # evidence id, model, shape, baseline plan, new plan
    ("ev-ci-h100-wan13b-cfg-parallel", "wan2.1-t2v-1.3b", (832, 480, 24, 50),
     Plan(residency=RESIDENT), Plan(num_gpus=2, cfg_parallel=True, residency=RESIDENT)),
    ("ev-ci-h100-flux1-two-gpus", "flux.1-dev", (1024, 1024, 1, 50),
     Plan(residency=RESIDENT), Plan(num_gpus=2, ulysses=2, residency=RESIDENT)),
    ("ev-ci-h100-qwen-image-ring2", "qwen-image", (1024, 1024, 1, 50),
     Plan(residency=RESIDENT), Plan(num_gpus=2, ring=2, attention_backend="fa", residency=RESIDENT)),
]


@pytest.mark.parametrize("evidence_id, model, shape, base, new", CASES, ids=[c[0] for c in CASES])
def test_predicted_speedup_matches_the_measured_one(evidence_id, model, shape, base, new):
    measured = loader.get("evidence", evidence_id).value
    predicted = step_time(model, base, *shape) / step_time(model, new, *shape)
    assert abs(predicted - measured) / measured <= TOLERANCE, (predicted, measured)


def test_fsdp_is_slower_than_plain_sequence_parallelism_as_measured():
    """ev-ci-h100-zimage-sp-vs-fsdp: 90.0 ms on 1 GPU, 54.3 ms with SP on 2, 81.75 ms with FSDP on 2."""
    shape = (1024, 1024, 1, 9)
    one = step_time("z-image-turbo", Plan(residency=RESIDENT), *shape)
    sp = step_time("z-image-turbo", Plan(num_gpus=2, ulysses=2, residency=RESIDENT), *shape)
    fsdp = step_time("z-image-turbo", Plan(num_gpus=2, ulysses=2, fsdp=True, residency=RESIDENT), *shape)
    assert sp < fsdp < one
    assert abs(one / sp - 90.0 / 54.3) / (90.0 / 54.3) <= TOLERANCE
