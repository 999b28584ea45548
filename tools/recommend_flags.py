"""recommend_flags: the fastest valid, fully explicit `sglang generate` command for a model, GPUs and budget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

from ..knowledge import loader, releases
from .check_command import check_command
from .hardware_spec import ResolvedHardware, parse_hardware_spec
from .planning.context import PlanContext
from .planning.estimate import VramEstimate
from .planning.inputs import resolve_budget, resolve_model, resolve_target_hardware, resolve_version
from .planning.cmdline import command_line
from .planning.render import BASE_ENV, FlagChoice, flags_to_argv, render_flags
from .planning.search import Scored, precision_options, rank
from .planning.workload import Workload, resolve_workload
from .problems import Problem, ToolInputError

MAX_ALTERNATIVES = 5
OBJECTIVES = ("speed", "memory", "balanced")
TIGHT_HEADROOM_GB = 1.0


class Alternative(BaseModel):
    label: str
    argv: list[str]
    why: str
    per_gpu_peak_gb: float | None = Field(default=None, description="Estimated peak per GPU, GiB.")
    relative_time: float | None = Field(default=None, description="Predicted time / the recommendation's (model).")


class Rejected(BaseModel):
    option: str
    reason: str


class RecommendResult(BaseModel):
    command: str = Field(description="One copy-pasteable shell line: env assignments, then the quoted argv.")
    argv: list[str]
    env: dict[str, str]
    flags: list[FlagChoice] = Field(description="Every flag with its value, reason and source.")
    plan: str = Field(description="The plan in words.")
    estimate: VramEstimate
    alternatives: list[Alternative] = Field(description="Worth benchmarking against it; the last one is what sglang "
                                                        "decides by itself (the baseline to beat).")
    rejected: list[Rejected]
    warnings: list[Problem]
    model: str = Field(description="Knowledge-base id of the model.")
    workload: Workload
    hardware: ResolvedHardware
    sglang_version: str
    objective: str


def _auto_baseline(ctx: PlanContext, num_gpus: int) -> Alternative:
    v = ctx.version
    w = ctx.workload
    argv = ["sglang", "generate", "--model-path", ctx.model_ref, "--width", str(w.width), "--height",
            str(w.height)]
    if ctx.model.modality == "video":
        argv += ["--num-frames", str(w.num_frames)]
    argv += ["--num-inference-steps", str(w.num_inference_steps), "--num-gpus", str(num_gpus),
             *releases.warmup_argv(v)]
    row = releases.resolve(v)
    if row.performance_mode:
        argv += ["--performance-mode", "auto"]
        why = ("sglang's own choice: --performance-mode auto re-plans residency, FSDP and CFG parallel from the "
               "free memory it sees. Benchmark the recommendation against this.")
    else:
        defaults = "; ".join(row.offload_defaults[:3]) or "its built-in defaults"
        why = (f"sglang {v} with nothing set decides offload by itself ({defaults}). Benchmark the recommendation "
               "against this.")
    checked = check_command(argv=argv, hardware=ctx.hardware.spec, sglang_version=v, family=ctx.model.family)
    if checked.errors:
        why += " Here sglang's own layout breaks a rule: " + "; ".join(p.message for p in checked.errors[:2])
    return Alternative(label="sglang defaults (the baseline to beat)", argv=argv, why=why)


def _reasons(ctx: PlanContext, best: Scored, runner_up: Scored | None) -> dict[str, str]:
    p, e = best.plan, best.estimate
    fit = f"estimated peak {e.per_gpu_peak_gb:.1f} GiB of a {ctx.budget_gb:.1f} GiB budget per GPU"
    reasons = {"residency": f"Explicit so sglang cannot pick its own offload; {fit}."}
    for g, mode in p.residency.items():
        reasons[f"residency_{g}"] = {"resident": f"{g} stays on the GPU ({fit}).",
                                     "cpu_offload": f"{g} waits in host memory between uses to fit the budget.",
                                     "layerwise": f"{g} streams layer by layer to fit the budget."}[mode]
    reasons["layerwise"] = ("DiT layerwise offload needed to fit the budget." if p.group("dit") == "layerwise"
                            else "Off: a resident DiT fits, and offload costs latency (image models most).")
    if p.cfg_parallel:
        reasons["cfg"] = "CFG parallel: the two CFG branches run at once on two GPU groups."
    elif ctx.workload.uses_cfg and p.num_gpus > 1:
        reasons["cfg"] = "Off: pure sequence parallelism is predicted faster here; CFG parallel is an alternative."
    elif not ctx.workload.uses_cfg:
        reasons["cfg"] = "Off: this request runs one branch (no true CFG), so there is nothing to split."
    reasons["ulysses"] = (f"Ulysses {p.ulysses}: divides {ctx.model.attention_heads} heads." if p.ulysses > 1 else
                          "No Ulysses split.")
    reasons["fsdp"] = "FSDP shards the DiT across GPUs to fit." if p.fsdp else "Off: the DiT fits unsharded."
    reasons["compile"] = "torch.compile fuses the DiT forward (1.2-1.5x on denoise; small float drift)."
    reasons["num_gpus"] = (f"{p.num_gpus} of {ctx.hardware.count} GPU(s): predicted fastest" +
                           (f" (next best: {runner_up.plan.label()})." if runner_up else "."))
    if p.attention_backend == "fa":
        reasons["attention"] = f"FlashAttention: lossless and fastest on SM {ctx.hardware.compute_capability}."
    elif p.attention_backend == "torch_sdpa":
        reasons["attention"] = f"SDPA: FlashAttention does not run on SM {ctx.hardware.compute_capability}."
    elif p.attention_backend:
        reasons["attention"] = f"{p.attention_backend}: lossy approximate attention (allow_lossy)."
    return reasons


def _alternatives(ctx: PlanContext, best: Scored, valid: list[Scored]) -> list[Alternative]:
    seen = {best.plan.label()}
    picks: list[Scored] = []
    wanted = [
        lambda s: s.plan.cfg_parallel != best.plan.cfg_parallel and s.plan.num_gpus == best.plan.num_gpus,
        lambda s: s.plan.group("dit") != best.plan.group("dit"),
        lambda s: s.plan.num_gpus != best.plan.num_gpus,
        lambda s: s.plan.fsdp != best.plan.fsdp,
        lambda s: True,
    ]
    for want in wanted:
        for s in valid[1:]:
            if want(s) and s.plan.label() not in seen:
                picks.append(s)
                seen.add(s.plan.label())
                break
    out = []
    for s in picks[:MAX_ALTERNATIVES - 1]:
        flags = render_flags(ctx, s.plan, {})
        ratio = s.cost.total_s / best.cost.total_s if best.cost.total_s else None
        out.append(Alternative(label=s.plan.label(), argv=flags_to_argv(flags), per_gpu_peak_gb=s.estimate.per_gpu_peak_gb,
                               relative_time=round(ratio, 2) if ratio else None,
                               why=f"Worth an ABBA benchmark: predicted {ratio:.2f}x the recommendation's time, "
                                   f"peak {s.estimate.per_gpu_peak_gb:.1f} GiB." if ratio else "Worth a benchmark."))
    out.append(_auto_baseline(ctx, best.plan.num_gpus))
    return out


def _rejected(ctx: PlanContext, best: Scored, unfit: list[Scored]) -> list[Rejected]:
    out: list[Rejected] = []
    v = ctx.version
    if unfit:
        biggest = min(unfit, key=lambda s: s.cost.total_s)
        out.append(Rejected(option=biggest.plan.label(), reason=f"budget: estimated {biggest.estimate.per_gpu_peak_gb:.1f}"
                            f" GiB per GPU exceeds the {ctx.budget_gb:.1f} GiB budget."))
    if not ctx.allow_lossy:
        for oid in ("attn_sage_attn", "cache_dit"):
            out.append(Rejected(option=oid, reason="lossy: pass allow_lossy=true to consider it."))
    if best.plan.weight_format == "bf16":
        out.append(Rejected(option="weights_fp8", reason="lossy, and needs a pre-quantized fp8 checkpoint "
                            "(--transformer-weights-path, SM89+); pass that model id to plan with it."))
    out.append(Rejected(option="cache_dit", reason="needs a per-model Cache-DiT config; not planned automatically.")
               if ctx.allow_lossy else Rejected(option="tensor_parallel", reason="not planned automatically: sglang "
                                                "supports DiT TP only for some models (e.g. FLUX.2, where SGLang's CI "
                                                "measured 1.8x on 2 H100: evidence ev-ci-h100-flux2-tp2); benchmark "
                                                "--tp-size by hand there."))
    out.append(Rejected(option="weights_nvfp4", reason="needs pre-quantized weights (--transformer-weights-path) "
                        "and SM10x/SM12x."))
    for opt in loader.load("options"):
        if opt.stale and not opt.releases.contains(v):
            succ = ", ".join(opt.superseded_by) or "nothing"
            out.append(Rejected(option=opt.id, reason=f"stale seed row for sglang {v}: {opt.stale_reason} "
                                f"(superseded by {succ})."))
    if best.plan.attention_backend == "torch_sdpa":
        out.append(Rejected(option="attn_fa", reason=f"compute capability {ctx.hardware.compute_capability}: "
                            "FlashAttention needs SM80+ and is not used on SM12x."))
    if not releases.resolve(v).performance_mode:
        out.append(Rejected(option="performance_mode", reason=f"missing in sglang {v} (from 0.5.12)."))
    return out


def _first_fit(ctx: PlanContext, objective: str) -> Scored | None:
    valid = rank(ctx, objective)[0]
    return valid[0] if valid else None


def _what_would_fit(ctx: PlanContext, objective: str) -> list[str]:
    """Nearby requests that do have a valid plan: more GPUs of the same kind, or a smaller frame."""
    found = []
    gpu_part = ctx.hardware.spec.split("x", 1)[1]
    for count in (ctx.hardware.count * 2, ctx.hardware.count * 4, 8):
        if count > ctx.hardware.count and count <= 8:
            bigger = replace(ctx, hardware=parse_hardware_spec(f"{count}x{gpu_part}"),
                             budget_gb=ctx.budget_gb)
            if (fit := _first_fit(bigger, objective)) is not None:
                found.append(f"{count}x{gpu_part}: {fit.plan.label()}")
                break
    w = ctx.workload
    for scale in (0.75, 0.5):
        width, height = int(w.width * scale) // 16 * 16, int(w.height * scale) // 16 * 16
        smaller = replace(ctx, workload=w.model_copy(update={"width": width, "height": height}))
        if (fit := _first_fit(smaller, objective)) is not None:
            found.append(f"{width}x{height} on {ctx.hardware.spec}: {fit.plan.label()}")
            break
    return found


def _no_plan_error(ctx: PlanContext, objective: str, unfit: list[Scored], broken: list[Scored]) -> ToolInputError:
    shape = f"{ctx.workload.width}x{ctx.workload.height}" + (
        f"x{ctx.workload.num_frames}" if ctx.model.modality == "video" else "")
    if not precision_options(ctx):
        return ToolInputError("no_bf16", f"{ctx.hardware.gpu_name} (SM {ctx.hardware.compute_capability}) has no bf16, "
                              f"and {ctx.model.title} runs in bf16; the only way is an fp16 DiT, which is lossy.",
                              "Pass allow_lossy=true to plan with --dit-precision fp16, or use an SM80+ GPU.",
                              flag="allow_lossy")
    if broken:
        found = {p.code: (severity, p) for s in broken for severity, p in s.problems}
        problems = [p for _, p in sorted(found.values(), key=lambda sp: sp[0] != "error")]  # errors first
        reasons = "; ".join(f"{p.code}: {p.message}" for p in problems[:3])
        fixes = " ".join(dict.fromkeys(p.fix for p in problems[:3]))
        return ToolInputError("no_valid_plan", f"Every plan for {ctx.model.title} at {shape} on {ctx.hardware.spec} "
                              f"that fits the budget breaks a rule for sglang {ctx.version}: {reasons}.", fixes,
                              flag="hardware")
    smallest = min(unfit, key=lambda s: s.estimate.per_gpu_peak_gb) if unfit else None
    need = (f"the smallest plan ({smallest.plan.label()}) needs about "
            f"{smallest.estimate.per_gpu_peak_gb + smallest.estimate.runtime_overhead_gb:.1f} GiB per GPU"
            if smallest else "no layout is valid")
    nearby = _what_would_fit(ctx, objective)
    fix = ("What would fit: " + "; ".join(nearby) + "." if nearby else
           "Raise vram_budget_gb, use more or larger GPUs, or lower the resolution or frames.")
    return ToolInputError("nothing_fits", f"No valid plan for {ctx.model.title} at {shape} fits {ctx.budget_gb:.1f} "
                          f"GiB per GPU on {ctx.hardware.spec}: {need}.", fix, flag="vram_budget_gb")


def recommend_flags(
    model: Annotated[str, Field(description="Hugging Face id, short name (e.g. 'flux.1-dev') or local diffusers "
                                            "folder.")],
    hardware: Annotated[str | None, Field(description="<count>x<gpu>[-<memory>GB][-sxm|-pcie|-nvl], e.g. "
                                                      "'1xRTX4090', '4xH100-80GB', '8xH200'; omitted: detect.")] = None,
    family: Annotated[str | None, Field(description="Family of an unknown model (e.g. 'wan2.1', 'flux.1').")] = None,
    vram_budget_gb: Annotated[float | None, Field(description="GiB per GPU the run may use; omitted: all of it.")] = None,
    objective: Annotated[str, Field(description="'speed', 'memory' or 'balanced' (fastest with 10 % "
                                                "headroom).")] = "speed",
    allow_lossy: Annotated[bool, Field(description="Also consider options that change outputs.")] = False,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    negative_prompt: str | None = None,
    image_path: Annotated[str | None, Field(description="Input image, for edit and image-to-video models.")] = None,
    image_width: Annotated[int | None, Field(description="Input image size, when there is no image_path.")] = None,
    image_height: int | None = None,
    num_outputs_per_prompt: int = 1,
    sglang_version: Annotated[str | None, Field(description="Release that will run, e.g. '0.5.23'; omitted: the "
                                                            "installed one, else the newest known.")] = None,
) -> RecommendResult:
    """Recommend the fastest valid, fully explicit `sglang generate` command for a diffusion model on given GPUs
    and a per-GPU VRAM budget, with a reason and source for every flag, a VRAM estimate, alternatives worth
    benchmarking (including sglang's own defaults, the baseline to beat) and what was rejected and why.

    `hardware` is a spec like '1xRTX4090', '4xH100-80GB' or '8xH200' (works with no GPU present); left out,
    the local GPUs are detected. objective: 'speed' (default), 'memory', or 'balanced' (fastest with 10 %
    headroom). Lossy options appear only with allow_lossy=true. Deterministic for the same inputs.
    """
    warnings: list[Problem] = []
    if objective not in OBJECTIVES:
        raise ToolInputError("bad_objective", f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}.",
                             "Use 'speed' (fastest), 'memory' (lowest peak) or 'balanced' (fastest with 10 % "
                             "headroom).", flag="objective")
    match = resolve_model(model, family)
    warnings += [Problem(code="model_match", message=w, fix="Pass the exact Hugging Face id if this is not the "
                         "model you meant.", flag="model") for w in match.warnings]
    hw = resolve_target_hardware(hardware)
    warnings += hw.warnings
    version = resolve_version(sglang_version, warnings)
    budget = resolve_budget(vram_budget_gb, hw)
    workload = resolve_workload(match.model, version, width=width, height=height, num_frames=num_frames,
                                num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                                negative_prompt=negative_prompt, image_path=image_path, image_width=image_width,
                                image_height=image_height, num_outputs_per_prompt=num_outputs_per_prompt)
    ctx = PlanContext(model=match.model, workload=workload, hardware=hw, version=version, budget_gb=budget,
                      allow_lossy=allow_lossy, model_path=match.local_path or match.hf_id)
    valid, unfit, broken = rank(ctx, objective)
    if not valid:
        raise _no_plan_error(ctx, objective, unfit, broken)
    best = valid[0]
    flags = render_flags(ctx, best.plan, _reasons(ctx, best, valid[1] if len(valid) > 1 else None))
    if image_path:  # given, so it belongs in the copy-pasteable command
        flags.insert(1, FlagChoice(flag="--image-path", value=image_path, reason="The input image, as given.",
                                   source=f"releases/sglang-{version} (--image-path)"))
        if not Path(image_path).expanduser().exists():
            warnings.append(Problem(code="image_path_not_here", message=f"{image_path[:200]} does not exist on this "
                                    "machine.", fix="Fine if the command runs elsewhere; otherwise fix the path.",
                                    flag="image_path"))
    env = dict(BASE_ENV)
    argv = flags_to_argv(flags)
    warnings += [Problem(code="default_replaced", message=note, fix="Pass num_frames to choose.", flag="num_frames")
                 for note in workload.notes]
    if best.estimate.headroom_gb < TIGHT_HEADROOM_GB:
        warnings.append(Problem(code="tight_headroom", message=f"The plan leaves {best.estimate.headroom_gb:.2f} GiB "
                                "per GPU after the estimate and its safety margin; the estimate is typically within "
                                "10-20 % of measured peaks.", fix="Use objective='balanced' for 10 % headroom, or "
                                "check the first run's VRAM analysis with parse_vram_log.", flag="vram_budget_gb"))
    if match.model.gated:
        warnings.append(Problem(code="gated_model", message=f"{ctx.model_ref} is gated on Hugging Face.",
                                fix="Accept its licence and export HF_TOKEN before running."))
    if not match.model.sglang_native:
        warnings.append(Problem(code="not_native", message=match.model.support_note or "No native sglang pipeline.",
                                fix="Run with --backend diffusers; sglang's own optimizations will not apply."))
    return RecommendResult(
        command=command_line(argv, env), argv=argv, env=env, flags=flags, plan=best.plan.label(),
        estimate=best.estimate, alternatives=_alternatives(ctx, best, valid), rejected=_rejected(ctx, best, unfit),
        warnings=warnings, model=match.model.id, workload=workload, hardware=hw, sglang_version=version,
        objective=objective,
    )
