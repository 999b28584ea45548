"""check_command: validate a `sglang generate` command for a release and hardware, and estimate its VRAM."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from .hardware_spec import ResolvedHardware
from .planning.cmdline import ParsedCommand, parse_tokens, split_command
from .planning.context import PlanContext
from .planning.estimate import VramEstimate, estimate_vram
from .planning.from_command import command_facts, plan_from_command
from .planning.inputs import resolve_budget, resolve_model, resolve_target_hardware, resolve_version
from .planning.rules import check_rules, plan_facts
from .planning.search import _resident_fits, score
from .planning.plan import Plan
from .planning.workload import resolve_workload
from .problems import Problem, ToolInputError


class CheckResult(BaseModel):
    valid: bool = Field(description="No errors: sglang should accept it and the degrees fit the GPUs.")
    errors: list[Problem]
    warnings: list[Problem] = Field(description="Legal but likely slow or misleading.")
    notes: list[Problem] = Field(default_factory=list, description="Advice worth knowing; nothing wrong.")
    normalized_argv: list[str] = Field(description="The command with canonical flag spellings.")
    env: dict[str, str]
    plan: str | None = Field(default=None, description="What the command runs, in words, defaults filled in.")
    implicit: list[str] = Field(default_factory=list, description="What sglang decides because the command leaves it.")
    estimate: VramEstimate | None = Field(default=None, description="VRAM estimate for exactly this command.")
    model: str | None = None
    hardware: ResolvedHardware | None = None
    sglang_version: str


def _tokens(command: str | None, argv: list[str] | None) -> list[str]:
    if (command is None) == (argv is None):
        raise ToolInputError("bad_input", "Pass exactly one of `command` (a shell line) or `argv` (a list).",
                             "For example command='sglang generate --model-path ... --num-gpus 2'.", flag="command")
    if argv is not None:
        if not all(isinstance(a, str) for a in argv):
            raise ToolInputError("bad_input", "argv must be a list of strings.", "Quote every element.", flag="argv")
        return list(argv)
    try:
        return split_command(command)
    except ValueError as exc:
        raise ToolInputError("bad_command", f"Could not split the command: {exc}.",
                             "Check unbalanced quotes; pass `argv` as a list to avoid shell quoting.",
                             flag="command") from exc


def _workload_args(parsed: ParsedCommand) -> dict:
    def num(flag, kind=int):
        f = parsed.get(flag)
        try:
            return kind(f.value) if f and f.value is not None else None
        except ValueError:
            return None
    return dict(width=num("--width"), height=num("--height"), num_frames=num("--num-frames"),
                num_inference_steps=num("--num-inference-steps"), guidance_scale=num("--guidance-scale", float),
                negative_prompt=parsed.get("--negative-prompt").value if parsed.get("--negative-prompt") else None,
                image_path=parsed.get("--image-path").value if parsed.get("--image-path") else None)


def _hardware(hardware: str | None, warnings: list[Problem]) -> ResolvedHardware | None:
    try:
        return resolve_target_hardware(hardware)
    except ToolInputError as exc:
        if exc.problem.code != "no_gpu_detected":
            raise
        warnings.append(Problem(code="hardware_unknown", message="No hardware given and no GPU visible: degrees, "
                                "compute capability and VRAM were not checked.", fix="Pass hardware, e.g. '2xH100'.",
                                flag="hardware"))
        return None


def check_command(command: Annotated[str | None, Field(description="A full `sglang generate ...` line (env "
                                                                  "prefixes and \\ continuations allowed).")] = None,
                  argv: Annotated[list[str] | None, Field(description="The same as a list, instead of command.")] = None,
                  hardware: Annotated[str | None, Field(description="e.g. '2xH100'; omitted: detect.")] = None,
                  sglang_version: Annotated[str | None, Field(description="Target release, e.g. '0.5.14'.")] = None,
                  vram_budget_gb: Annotated[float | None, Field(description="GiB per GPU the run may use.")] = None,
                  family: Annotated[str | None, Field(description="Family of an unknown model.")] = None) -> CheckResult:
    """Validate a `sglang generate` command (a shell line with optional VAR=value prefixes and backslash
    continuations, or an argv list) against a target sglang release and hardware: unknown or misspelled flags,
    values the release does not accept, illegal combinations, degrees that do not fit the GPUs, features the
    compute capability cannot run, and settings sglang would decide on its own. Also estimates the command's
    per-GPU VRAM peak ("will my command fit?"), against `vram_budget_gb` per GPU if given, else the whole GPU.
    `family` lets an unknown model (a fine-tune, a local folder) be checked like that family. Uses the same
    rules as recommend_flags.
    """
    warnings: list[Problem] = []
    tokens = _tokens(command, argv)
    version = resolve_version(sglang_version, warnings)
    hw = _hardware(hardware, warnings)
    return check_argv(tokens, version, hw, vram_budget_gb, family, warnings)


def check_argv(tokens: list[str], version: str, hw: ResolvedHardware | None, vram_budget_gb: float | None = None,
               family: str | None = None, warnings: list[Problem] | None = None) -> CheckResult:
    """check_command once the release and the hardware are resolved (None: skip hardware checks, detect nothing)."""
    warnings = [] if warnings is None else warnings
    parsed = parse_tokens(tokens, version)
    legal = ("repeated_flag", "abbreviated_flag")  # argparse takes these; they are misleading, not errors
    errors = [p for p in parsed.problems if p.code not in legal]
    warnings += [p for p in parsed.problems if p.code in legal]
    if parsed.subcommand == "serve":
        warnings.append(Problem(code="serve_command", message="This is `sglang serve`: only the flags it shares with "
                                "`sglang generate` were checked.", fix="Server-only flags are not validated here."))
    elif parsed.subcommand != "generate":
        raise ToolInputError("not_generate", f"`{parsed.subcommand}` is not `sglang generate` (or `sglang serve`).",
                             "Pass a `sglang generate ...` (or `sglang serve ...`) command.", flag="command")

    def result(**found) -> CheckResult:
        return CheckResult(valid=not errors, errors=errors, warnings=warnings, normalized_argv=parsed.argv(),
                           env=parsed.env, hardware=hw, sglang_version=version, **found)

    model_flag = parsed.get("--model-path")
    if model_flag is None or not model_flag.value:
        errors.append(Problem(code="missing_model_path", message="The command has no --model-path.",
                              fix="Add --model-path <Hugging Face id or local folder>.", flag="--model-path"))
        return result()
    try:
        match = resolve_model(model_flag.value, family)
    except ToolInputError as exc:
        warnings.append(Problem(code="unknown_model", message=exc.problem.message + " Model-specific checks and "
                                "the VRAM estimate were skipped.", fix=exc.problem.fix, flag="--model-path"))
        return result()
    warnings.extend(Problem(code="model_match", message=w, fix="Check --model-path.", flag="--model-path")
                    for w in match.warnings)
    if hw is None:
        return result(model=match.model.id)
    args = _workload_args(parsed)
    if match.model.needs_image and not args["image_path"]:
        warnings.append(Problem(code="image_path_missing", flag="--image-path", message=f"{match.model.title} needs "
                                "an input image at run time; the estimate assumes one at the output size.",
                                fix="Add --image-path (or pass it to run_generate)."))
        args["image_path"] = "<input image>"
    try:
        workload = resolve_workload(match.model, version, **args)
    except ToolInputError as exc:
        errors.append(exc.problem)
        return result(model=match.model.id)
    budget = resolve_budget(vram_budget_gb, hw)
    ctx = PlanContext(model=match.model, workload=workload, hardware=hw, version=version, budget_gb=budget)
    cp = plan_from_command(parsed, ctx)
    if cp.plan.num_gpus > hw.count:
        errors.append(Problem(code="not_enough_gpus", flag="--num-gpus", message=f"The command uses {cp.plan.num_gpus} "
                              f"GPUs; {hw.spec} has {hw.count}.", fix=f"Use --num-gpus {hw.count} or fewer, with degrees "
                              "that multiply to it."))
    estimate = estimate_vram(match.model, workload, cp.plan, budget)
    resident = Plan(num_gpus=cp.plan.num_gpus, cfg_parallel=cp.plan.cfg_parallel, ulysses=cp.plan.ulysses,
                    ring=cp.plan.ring, tp=cp.plan.tp, residency={g: "resident" for g in cp.plan.residency})
    resident_fits = _resident_fits([score(ctx, resident)])
    known, switched_on = command_facts(parsed, model_flag.value)
    facts = plan_facts(ctx, cp.plan, resident_plan_fits=resident_fits, explicit_residency=cp.explicit_residency,
                       explicit_parallel=cp.explicit_parallel, performance_mode=cp.performance_mode,
                       extra={"sp_degree": cp.sp_degree, **known})
    facts["enabled"] |= switched_on
    notes = []
    for severity, problem in check_rules(facts, version):
        {"error": errors, "warning": warnings}.get(severity, notes).append(problem)
    if not estimate.fits:
        warnings.append(Problem(code="may_not_fit", flag="--num-gpus", message=f"Estimated peak {estimate.per_gpu_peak_gb:.1f}"
                                f" GiB per GPU plus {estimate.runtime_overhead_gb:.2f} GiB runtime overhead exceeds "
                                f"{budget:.1f} GiB ({estimate.peak_phase} phase).",
                                fix="Offload a component, add GPUs, or ask recommend_flags for a plan that fits."))
    if cp.implicit:
        warnings.append(Problem(code="implicit_settings", message="sglang decides: " + "; ".join(cp.implicit) + ".",
                                fix="Write these settings explicitly (recommend_flags returns a fully explicit command)."))
    return result(model=match.model.id, plan=cp.plan.label(), implicit=cp.implicit, estimate=estimate, notes=notes)
