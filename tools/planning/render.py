"""Write a plan as a fully explicit `sglang generate` command, spelled for the target release."""

from __future__ import annotations


from pydantic import BaseModel, Field

from ...knowledge import loader, releases
from ...knowledge.schema.common import version_key
from .context import PlanContext
from .plan import Plan

BASE_ENV = {"FLASHINFER_DISABLE_VERSION_CHECK": "1"}
LEGACY_RESIDENCY_FLAGS = {  # group -> (cpu-offload flag, option id)
    "dit": ("--dit-cpu-offload", "dit_cpu_offload"),
    "text_encoder": ("--text-encoder-cpu-offload", "text_encoder_cpu_offload"),
    "image_encoder": ("--image-encoder-cpu-offload", "image_encoder_cpu_offload"),
    "vae": ("--vae-cpu-offload", "vae_cpu_offload"),
}
RESIDENCY_MODES = {"resident": "resident", "cpu_offload": "component-offload", "layerwise": "layerwise-offload"}


class FlagChoice(BaseModel):
    flag: str
    value: str | None = Field(description="The value written after the flag; null for a bare switch.")
    reason: str
    source: str = Field(description="Knowledge entry and where the fact comes from.")
    lossy: bool = False


def option_source(option_id: str) -> str:
    entry = loader.get("options", option_id)
    if entry is None:
        return option_id
    preferred = next((s for s in entry.sources if s.kind == "code"), entry.sources[0])
    return f"options/{option_id} ({preferred.ref})"


def aux_layerwise_flag(version: str) -> str | None:
    """The flag that can put an encoder or VAE in layerwise offload in this release, if any."""
    for flag in ("--component-residency", "--layerwise-offload-components"):
        if releases.has_flag(version, flag):
            return flag
    return None


def model_groups(ctx: PlanContext) -> list[str]:
    roles = {c.role for c in ctx.model.components}
    return [g for g in ("dit", "text_encoder", "image_encoder", "vae") if g in roles]


def _add(out: list[FlagChoice], argv: list[str], reason: str, option_id: str, lossy: bool = False) -> None:
    if not argv:
        return
    value = " ".join(argv[1:]) if len(argv) > 1 else None
    out.append(FlagChoice(flag=argv[0], value=value, reason=reason, source=option_source(option_id), lossy=lossy))


def render_flags(ctx: PlanContext, plan: Plan, reasons: dict[str, str]) -> list[FlagChoice]:
    """Every flag of the plan with its reason; `reasons` overrides the default text per key."""
    v = ctx.version
    w = ctx.workload
    why = reasons.get
    out: list[FlagChoice] = []
    _add(out, ["--model-path", ctx.model_ref], why("model", f"{ctx.model.title}."), "model_path")
    sizes = [("--width", w.width, "width"), ("--height", w.height, "height")]
    if ctx.model.modality == "video":
        sizes.append(("--num-frames", w.num_frames, "num_frames"))
    sizes.append(("--num-inference-steps", w.num_inference_steps, "num_inference_steps"))
    for flag, value, key in sizes:
        if releases.has_flag(v, flag):
            origin = "the model's default" if key in w.defaulted else "as requested"
            _add(out, [flag, str(value)], why(key, f"Workload {key} = {value} ({origin}); explicit because sglang's "
                                                  "defaults change between releases."),
                 "output_size" if key in ("width", "height") else key)
    if w.guidance_scale is not None and "guidance_scale" not in w.defaulted and releases.has_flag(v, "--guidance-scale"):
        _add(out, ["--guidance-scale", str(w.guidance_scale)], why("guidance", "As requested."), "num_inference_steps")
    _add(out, ["--num-gpus", str(plan.num_gpus)], why("num_gpus", f"{plan.num_gpus} of {ctx.hardware.count} GPU(s)."),
         "num_gpus")
    _add(out, ["--tp-size", str(plan.tp)], why("tp", "Tensor parallel off: sequence parallelism scales DiTs better."),
         "tensor_parallel")
    _add(out, ["--sp-degree", str(plan.sp)], why("sp", f"Sequence-parallel group of {plan.sp}."), "sp_degree")
    _add(out, ["--ulysses-degree", str(plan.ulysses)], why("ulysses", "Ulysses degree (divides the heads)."),
         "sequence_parallel")
    _add(out, ["--ring-degree", str(plan.ring)], why("ring", "Ring degree; ulysses x ring = sp."), "sequence_parallel")
    _add(out, releases.spell_bool(v, "--enable-cfg-parallel", plan.cfg_parallel),
         why("cfg", "CFG branches on separate GPU groups." if plan.cfg_parallel else "Off."), "cfg_parallel")
    _add(out, releases.spell_bool(v, "--use-fsdp-inference", plan.fsdp), why("fsdp", "FSDP off."), "fsdp_inference")
    groups = model_groups(ctx)
    if version_key(v) >= version_key("0.5.18") and releases.has_flag(v, "--component-residency"):
        assigns = ",".join(f"{g}={RESIDENCY_MODES[plan.group(g)]}" for g in groups)
        _add(out, ["--component-residency", assigns], why("residency", "Every component's residency, explicit."),
             "component_residency")
    else:
        for g in groups:
            flag, option_id = LEGACY_RESIDENCY_FLAGS[g]
            if releases.has_flag(v, flag):
                _add(out, releases.spell_bool(v, flag, plan.group(g) == "cpu_offload"),
                     why(f"residency_{g}", f"{g} {plan.group(g).replace('_', ' ')}."), option_id)
        if "dit" in groups and releases.has_flag(v, "--dit-layerwise-offload"):
            _add(out, releases.spell_bool(v, "--dit-layerwise-offload", plan.group("dit") == "layerwise"),
                 why("layerwise", "DiT layerwise offload " + ("on." if plan.group("dit") == "layerwise" else "off.")),
                 "dit_layerwise_offload")
        streamed = [g for g in groups if plan.group(g) == "layerwise"]
        if any(g != "dit" for g in streamed):
            _add(out, ["--layerwise-offload-components", *streamed],
                 why("layerwise_components", f"Stream {', '.join(streamed)} layer by layer to fit the budget."),
                 "layerwise_offload_components")
    if plan.group("dit") == "layerwise" and releases.has_flag(v, "--dit-offload-prefetch-size"):
        _add(out, ["--dit-offload-prefetch-size", f"{plan.prefetch:g}"], why("prefetch", "Layers fetched ahead."),
             "dit_offload_prefetch_size")
    _add(out, releases.spell_bool(v, "--enable-torch-compile", plan.compile),
         why("compile", "torch.compile on the DiT." if plan.compile else "Off."), "torch_compile")
    if plan.warmup:
        _add(out, releases.warmup_argv(v), why("warmup", "Warm up so the timed request excludes compile and "
                                                         "first-use costs."), "warmup")
    if plan.attention_backend:
        lossy = plan.attention_backend not in ("fa", "torch_sdpa")
        _add(out, ["--attention-backend", plan.attention_backend], why("attention", "Attention kernel."),
             f"attn_{plan.attention_backend}", lossy=lossy)
    if plan.dit_precision and releases.has_flag(v, "--dit-precision"):
        _add(out, ["--dit-precision", plan.dit_precision], why("precision", f"This GPU (SM {ctx.hardware.compute_capability}) "
             "has no bf16; run the DiT in fp16 (lossy: numerics differ from bf16)."), "dit_precision", lossy=True)
    _add(out, releases.performance_mode_manual_argv(v),
         why("performance_mode", "Stop sglang re-planning residency and parallelism on its own."), "performance_mode")
    return out


def flags_to_argv(flags: list[FlagChoice], extra: list[str] | None = None) -> list[str]:
    argv = ["sglang", "generate"]
    for f in flags:
        argv.append(f.flag)
        if f.value is not None:
            argv += f.value.split(" ") if f.flag == "--layerwise-offload-components" else [f.value]
    return argv + list(extra or [])
