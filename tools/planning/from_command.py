"""Read a parsed command as a plan, filling what it leaves unset the way the target release would."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...knowledge import releases
from ...knowledge.schema.common import version_key
from .cmdline import ParsedCommand
from .context import PlanContext
from .plan import Plan
from .render import LEGACY_RESIDENCY_FLAGS, RESIDENCY_MODES, model_groups

LAYERWISE_FAMILIES = ("wan2.1", "wan2.2", "mova")  # options/dit_layerwise_offload default_on
LAYERWISE_AUTO_OFF_GB = 130  # 0.5.10+: not auto-enabled on GPUs this large
LOW_MEMORY_GB = 30
_MODE_TO_RESIDENCY = {v: k for k, v in RESIDENCY_MODES.items()} | {"snapshot-offload": "cpu_offload"}
_BRANCH = re.compile(r"^if (?P<cond>.+?): (?P<body>.+)$")
_ASSIGN = re.compile(r"(\w+)_cpu_offload=(True|False)")


@dataclass
class CommandPlan:
    plan: Plan
    implicit: list[str] = field(default_factory=list)  # what sglang decides because the command leaves it open
    explicit_residency: bool = True
    explicit_parallel: bool = True
    performance_mode: str = ""
    sp_degree: int = 1  # as sglang computes it; may differ from ulysses x ring in a broken command


def _int(parsed: ParsedCommand, flag: str) -> int | None:
    f = parsed.get(flag)
    try:
        return int(f.value) if f and f.value is not None else None
    except ValueError:
        return None


def _bool(parsed: ParsedCommand, flag: str) -> bool | None:
    f = parsed.get(flag)
    return None if f is None else f.as_bool()


def _condition(cond: str, low_memory: bool, image: bool) -> bool:
    """Evaluate one offload_defaults condition from the release table for this case."""
    known = {"get_device_total_memory() / BYTES_PER_GB < 30": low_memory,
             "pipeline_config.task_type.is_image_gen()": image}
    value = True
    for part in cond.split(" and "):
        part = part.strip()
        negate = part.startswith("not (") and part.endswith(")")
        key = part[5:-1] if negate else part
        if key not in known:
            return False  # a branch for another platform or pipeline kind
        value = value and (known[key] != negate)
    return value


def default_cpu_offload(version: str, memory_gb: float, image: bool) -> dict[str, bool]:
    """What the release's _adjust_offload sets for unset offload flags (data: releases.yaml offload_defaults)."""
    for line in releases.resolve(version).offload_defaults:
        m = _BRANCH.match(line)
        if m and _condition(m.group("cond"), memory_gb < LOW_MEMORY_GB, image):
            return {g: v == "True" for g, v in _ASSIGN.findall(m.group("body"))}
    return {}


def _layerwise_by_default(ctx: PlanContext) -> bool:
    if ctx.model.family not in LAYERWISE_FAMILIES:
        return False
    return version_key(ctx.version) < version_key("0.5.10") or ctx.hardware.memory_gb < LAYERWISE_AUTO_OFF_GB


def plan_from_command(parsed: ParsedCommand, ctx: PlanContext) -> CommandPlan:
    v = ctx.version
    implicit: list[str] = []
    num_gpus = _int(parsed, "--num-gpus") or 1
    tp = _int(parsed, "--tp-size") or 1
    dp = next((d for d in (_int(parsed, f) for f in ("--data-parallel-size", "--dp-size", "--dp")) if d), 1)
    cfg_flag = _bool(parsed, "--enable-cfg-parallel")
    ulysses, ring, sp = _int(parsed, "--ulysses-degree"), _int(parsed, "--ring-degree"), _int(parsed, "--sp-degree")
    sp_given = any(x is not None for x in (ulysses, ring, sp))
    cfg = bool(cfg_flag)
    if cfg_flag is None and version_key(v) >= version_key("0.5.11") and num_gpus >= 2 and not sp_given \
            and ctx.workload.uses_cfg and num_gpus % (2 * tp) == 0:
        cfg = True
        implicit.append("CFG parallel (sglang turns it on for CFG requests on 2+ GPUs when no SP flag is set)")
    cfg_degree = 2 if cfg else 1
    if sp is None:  # sglang gives sequence parallelism every GPU left after TP and CFG
        sp = max(1, num_gpus // (dp * tp * cfg_degree))
    if ulysses is None and ring is None:
        ulysses, ring = sp, 1
    elif ring is None:
        ring = max(1, sp // ulysses) if ulysses else 1
    elif ulysses is None:
        ulysses = max(1, sp // ring)
    # a bare-switch CFG flag cannot say "off"; there the SP flags alone pin the layout
    cfg_info = releases.flag_info(v, "--enable-cfg-parallel")
    cfg_pinned = cfg_flag is not None or (cfg_info is not None and cfg_info.style == "switch")
    explicit_parallel = num_gpus == 1 or (sp_given and cfg_pinned)
    if num_gpus > 1 and not sp_given:
        implicit.append(f"sequence-parallel layout (sglang picks Ulysses {ulysses})")

    residency: dict[str, str] = {}
    groups = model_groups(ctx)
    assignments = {}
    cr = parsed.get("--component-residency")
    if cr:
        for value in cr.values:
            for item in value.split(","):
                name, _, mode = item.partition("=")
                if name and mode in _MODE_TO_RESIDENCY:
                    assignments[name.strip()] = _MODE_TO_RESIDENCY[mode.strip()]
    streamed = parsed.get("--layerwise-offload-components")
    for name in (streamed.values if streamed else []):
        assignments.setdefault(name, "layerwise")
    defaults = default_cpu_offload(v, ctx.hardware.memory_gb, ctx.model.modality == "image")
    layerwise_flag = _bool(parsed, "--dit-layerwise-offload")
    explicit_residency = True
    for g in groups:
        if g in assignments or "all" in assignments:
            residency[g] = assignments.get(g, assignments.get("all"))
            continue
        if g == "dit":
            if layerwise_flag:
                residency[g] = "layerwise"
                continue
            if layerwise_flag is None and releases.has_flag(v, "--dit-layerwise-offload"):
                explicit_residency = False
                if _layerwise_by_default(ctx):
                    residency[g] = "layerwise"
                    implicit.append("DiT layerwise offload (on by default for Wan/MOVA below 130 GB)")
                    continue
        flag = LEGACY_RESIDENCY_FLAGS[g][0]
        given = _bool(parsed, flag)
        if given is None:
            explicit_residency = False
            residency[g] = "cpu_offload" if defaults.get(g) else "resident"
            if defaults.get(g):
                implicit.append(f"{g} CPU offload ({flag} unset)")
        else:
            residency[g] = "cpu_offload" if given else "resident"
    prefetch = parsed.get("--dit-offload-prefetch-size")
    try:
        prefetch_value = float(prefetch.value) if prefetch and prefetch.value else 0.0
    except ValueError:
        prefetch_value = 0.0
    backend = (parsed.get("--attention-backend").value or "") if parsed.get("--attention-backend") else ""
    mode_flag = parsed.get("--performance-mode")
    performance_mode = mode_flag.value if mode_flag and mode_flag.value else ""
    if not performance_mode and releases.resolve(v).performance_mode:
        implicit.append("performance mode auto (sglang may re-plan residency, FSDP and CFG parallel)")
    warmup = any(parsed.get(f) is not None and (parsed.get(f).as_bool() if f == "--warmup" else
                                                (parsed.get(f).value or "off") != "off")
                 for f in ("--warmup", "--warmup-mode") if releases.has_flag(v, f))
    lossy = [f"attn_{backend}"] if backend and backend not in ("fa", "torch_sdpa") else []
    plan = Plan(num_gpus=num_gpus, cfg_parallel=cfg, tp=tp, ulysses=max(1, ulysses), ring=max(1, ring),
                fsdp=bool(_bool(parsed, "--use-fsdp-inference")), residency=residency, prefetch=prefetch_value,
                compile=bool(_bool(parsed, "--enable-torch-compile")), warmup=warmup, attention_backend=backend,
                lossy=lossy)
    return CommandPlan(plan=plan, implicit=implicit, explicit_residency=explicit_residency,
                       explicit_parallel=explicit_parallel, performance_mode=performance_mode, sp_degree=sp)


_TRUE = {"1", "true", "yes", "on"}


def _weight_format(parsed: ParsedCommand, model_ref: str) -> str:
    """The DiT weight format a command asks for, from its weights path, model id and quantization flags."""
    given = parsed.get("--transformer-weights-path") or parsed.get("--transformer-path")
    text = f"{given.value if given else ''} {model_ref}".lower()
    if parsed.get("--enable-svdquant") and parsed.get("--enable-svdquant").as_bool():
        precision = parsed.get("--quantization-precision")
        return "svdq-nvfp4" if (precision and precision.value == "nvfp4") or "fp4" in text else "svdq-int4"
    for key, fmt in (("nvfp4", "nvfp4"), ("fp4", "nvfp4"), ("fp8", "fp8"), ("int8", "int8"), ("gguf", "gguf")):
        if key in text:
            return fmt
    return "bf16"


def command_facts(parsed: ParsedCommand, model_ref: str) -> tuple[dict, set[str]]:
    """Rule facts only the command line knows (precision, weights, backend, Cache-DiT), and options it turns on."""
    enabled: set[str] = set()
    if parsed.env.get("SGLANG_CACHE_DIT_ENABLED", "").lower() in _TRUE or _bool(parsed, "--enable-cache-dit"):
        enabled.add("cache_dit")
    if parsed.get("--cache-dit-config"):
        enabled.add("cache_dit_config")
    if _bool(parsed, "--enable-svdquant"):
        enabled.add("svdquant")
    precision = parsed.get("--dit-precision")
    backend = parsed.get("--backend")
    weights = parsed.get("--transformer-weights-path") or parsed.get("--transformer-path")
    facts = {
        "dtype": precision.value if precision and precision.value else "bf16",
        "weight_format": _weight_format(parsed, model_ref),
        "prequantized_weights": bool(weights and weights.value),
        "mask_strategy_file": bool(parsed.get("--mask-strategy-file-path")),
        "backend": backend.value if backend and backend.value and backend.value != "auto" else "sglang",
    }
    return facts, enabled
