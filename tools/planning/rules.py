"""Apply the knowledge base's rules to a plan: facts in, problems out. The rules themselves are data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...knowledge import loader
from ...knowledge.schema.common import version_key
from ..problems import Problem
from .context import PlanContext
from .plan import Plan

# How a plan's settings switch options on (ids of options.yaml).
RESIDENCY_OPTIONS = {("dit", "cpu_offload"): "dit_cpu_offload", ("dit", "layerwise"): "dit_layerwise_offload",
                     ("text_encoder", "cpu_offload"): "text_encoder_cpu_offload",
                     ("image_encoder", "cpu_offload"): "image_encoder_cpu_offload",
                     ("vae", "cpu_offload"): "vae_cpu_offload"}


def enabled_options(plan: Plan) -> set[str]:
    on = set(plan.lossy)
    if plan.compile:
        on.add("torch_compile")
    if plan.warmup:
        on.add("warmup")
    if plan.cfg_parallel:
        on.add("cfg_parallel")
    if plan.sp > 1:
        on.add("sequence_parallel")
    if plan.tp > 1:
        on.add("tensor_parallel")
    if plan.fsdp:
        on.add("fsdp_inference")
    if plan.attention_backend:
        on.add(f"attn_{plan.attention_backend}")
    on |= {opt for (group, mode), opt in RESIDENCY_OPTIONS.items() if plan.group(group) == mode}
    return on


def plan_facts(ctx: PlanContext, plan: Plan, *, resident_plan_fits: bool, explicit_residency: bool = True,
               explicit_parallel: bool = True, performance_mode: str | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "num_gpus": plan.num_gpus, "tp_size": plan.tp, "sp_degree": plan.sp, "ulysses_degree": plan.ulysses,
        "ring_degree": plan.ring, "cfg_degree": plan.cfg_degree, "heads": ctx.model.attention_heads,
        "attention_backend": plan.attention_backend, "uses_cfg": ctx.workload.uses_cfg,
        "model_cfg_parallel_ok": ctx.model.cfg_parallel_ok, "model_family": ctx.model.family,
        "modality": ctx.model.modality, "dtype": plan.dit_precision or "bf16", "weight_format": plan.weight_format,
        "prequantized_weights": plan.weight_format != "bf16",
        "enabled": enabled_options(plan), "prefetch": plan.prefetch, "mask_strategy_file": False,
        "resident_plan_fits": resident_plan_fits, "mig": False, "distinct_gpus": ctx.hardware.count,
        "backend": "sglang", "version": version_key(ctx.version), "warmed_timing": plan.warmup,
        "explicit_residency": explicit_residency, "explicit_parallel": explicit_parallel,
        "performance_mode": performance_mode if performance_mode is not None else
        ("manual" if version_key(ctx.version) >= version_key("0.5.12") else ""),
    }
    if ctx.sm is not None:
        facts["sm"] = ctx.sm
    facts.update(extra or {})
    return facts


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def check_rules(facts: dict[str, Any], version: str, severities: Iterable[str] = ("error", "warning", "info"),
                ) -> list[tuple[str, Problem]]:
    """(severity, problem) for every rule that holds in `version` and the facts violate."""
    out = []
    wanted = set(severities)
    for rule in loader.load("rules"):
        if rule.severity not in wanted or not rule.releases.contains(version):
            continue
        try:
            violated = rule.violated(facts)
        except KeyError:  # a fact this case cannot know (e.g. an unknown GPU's compute capability)
            continue
        if violated:
            shown = {k: (sorted(v) if isinstance(v, set) else v) for k, v in facts.items()}
            out.append((rule.severity, Problem(code=rule.id, message=rule.message.format_map(_Blank(shown)),
                                               fix=rule.fix, flag=(rule.options or [None])[0])))
    return out
