"""Resolve the inputs both planning tools share: model, hardware, sglang release, budget."""

from __future__ import annotations

from ...knowledge import releases
from ...knowledge.models_lookup import ModelMatch, identify_model
from ..hardware_spec import ResolvedHardware, resolve_hardware
from ..problems import Problem, ToolInputError

MAX_NAME_CHARS = 1000  # longer than any model id, path or hardware spec; keeps fuzzy matching fast


def resolve_model(model: str, family: str | None) -> ModelMatch:
    if not isinstance(model, str) or not model.strip():
        raise ToolInputError("missing_model", "No model was given.",
                             "Pass a Hugging Face id (e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers), a short name, or a "
                             "local diffusers folder.", flag="model")
    if len(model) > MAX_NAME_CHARS:
        raise ToolInputError("bad_model", f"model is {len(model)} characters long; no model id or path is.",
                             "Pass a Hugging Face id, a short name or a local folder path.", flag="model")
    return identify_model(model.strip(), family)


def resolve_target_hardware(hardware: str | None) -> ResolvedHardware:
    if hardware is not None and len(hardware) > MAX_NAME_CHARS:
        raise ToolInputError("bad_hardware_spec", f"hardware is {len(hardware)} characters long.",
                             "Write it like 1xRTX4090, 4xH100-80GB or 8xH200.", flag="hardware")
    try:
        resolved = resolve_hardware(hardware)
    except ToolInputError as exc:
        if exc.problem.code == "no_gpu_detected":
            raise ToolInputError("no_gpu_detected", "No hardware was given and no NVIDIA GPU is visible here "
                                 "(planning mode).", "Pass hardware as <count>x<gpu>[-<memory>GB][-sxm|-pcie|-nvl], "
                                 "e.g. '1xRTX4090', '4xH100-80GB' or '8xH200'.", flag="hardware") from exc
        raise
    if not resolved.supported:
        raise ToolInputError("hardware_not_supported", f"{resolved.spec}: {resolved.gpu_name} is a "
                             f"{resolved.vendor.upper()} GPU; ROCm targets are not supported yet, so no plan is made "
                             "rather than a wrong one.", "Plan for an NVIDIA GPU, or tune ROCm by hand with sglang's "
                             "own docs.", flag="hardware")
    if resolved.count < 1:
        raise ToolInputError("no_gpu_detected", "The hardware has no usable GPU.",
                             "Pass a hardware spec such as '1xH100'.", flag="hardware")
    return resolved


def installed_sglang_version() -> str | None:
    """The version behind the configured sglang executable, if there is one (read once, cached)."""
    from ..runs import runner  # lazy: only when the caller leaves the version out
    from ...server.settings import sglang_command, state_home

    return runner.sglang_version(sglang_command(), cache_file=str(state_home() / "sglang_version.json"),
                                 timeout_s=20)


def resolve_version(sglang_version: str | None, warnings: list[Problem]) -> str:
    requested = sglang_version or installed_sglang_version()
    source = "given" if sglang_version else ("installed" if requested else "newest known")
    try:
        row = releases.resolve(requested)
    except ValueError as exc:
        raise ToolInputError("bad_sglang_version", str(exc), f"Pass a release from {releases.oldest()} to "
                             f"{releases.newest()}, e.g. '{releases.newest()}'.", flag="sglang_version") from exc
    if row.note:
        warnings.append(Problem(code="sglang_version_mapped", message=row.note, fix="Pass the exact release you run."))
    if source == "newest known":
        warnings.append(Problem(code="sglang_version_assumed", message=f"No sglang_version given and no sglang "
                                f"executable found; planning for the newest known release, {row.version}.",
                                fix="Pass sglang_version to plan for the release you run.", flag="sglang_version"))
    return row.version


def resolve_budget(vram_budget_gb: float | None, hardware: ResolvedHardware) -> float:
    if vram_budget_gb is None:
        return hardware.memory_gb
    if vram_budget_gb <= 0:
        raise ToolInputError("bad_budget", f"vram_budget_gb must be positive, got {vram_budget_gb}.",
                             "Pass the GiB per GPU the run may use, or leave it out to use the whole GPU.",
                             flag="vram_budget_gb")
    if vram_budget_gb > hardware.memory_gb:
        raise ToolInputError("bad_budget", f"vram_budget_gb={vram_budget_gb} is more than a {hardware.gpu_name} has "
                             f"({hardware.memory_gb:.1f} GiB).", "Pass at most the GPU's memory, or leave it out.",
                             flag="vram_budget_gb")
    return float(vram_budget_gb)
