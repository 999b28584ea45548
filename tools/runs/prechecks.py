"""Checks run_generate makes before it starts anything: the process can be launched, a gated model can be
downloaded, the disk has room, the output folder is writable, and the caller's env is sane."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ...server.settings import SGLANG_ENV
from ..problems import ToolInputError
from . import integration, runner

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_ENV_VARS = 100

MAX_PROMPT_CHARS = 20_000  # far above any text encoder's context; keeps argv, records and results small
MAX_ARGV_BYTES = 256 * 1024  # well under the kernel's limit for one process's arguments and environment


def check_launchable(prompt: str, argv: list[str] | None, env: dict[str, str] | None) -> None:
    """Refuse before starting what the operating system would refuse at exec."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ToolInputError("bad_input", f"The prompt has {len(prompt)} characters; the cap is {MAX_PROMPT_CHARS}.",
                             "Shorten it: text encoders read a few hundred tokens at most.", flag="prompt")
    values = [prompt, *(str(a) for a in argv or []), *(f"{k}={v}" for k, v in (env or {}).items())]
    if any("\x00" in v for v in values):
        raise ToolInputError("bad_input", "An argument or environment value contains a NUL character, which no "
                             "process argument can hold.", "Remove the NUL (\\x00) from the prompt, argv or env.")
    if sum(len(v.encode("utf-8", "replace")) for v in values) > MAX_ARGV_BYTES:
        raise ToolInputError("bad_input", "The arguments are too long to start a process with.",
                             "Shorten the prompt or argv.", flag="argv")

def _hf_home() -> Path:
    return Path(os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "huggingface").expanduser()


def _has_hf_token() -> bool:
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return True
    candidates = [os.environ.get("HF_TOKEN_PATH"), _hf_home() / "token", Path.home() / ".huggingface" / "token"]
    return any(c and Path(c).expanduser().is_file() and Path(c).expanduser().stat().st_size > 0 for c in candidates)


def _has_cached_snapshot(model: str) -> bool:
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or str(_hf_home() / "hub")
    snapshots = Path(hub).expanduser() / ("models--" + model.replace("/", "--")) / "snapshots"
    try:
        return any(p.is_dir() and any(p.iterdir()) for p in snapshots.iterdir())
    except OSError:
        return False


def check_gated(model: str) -> None:
    if Path(model).expanduser().exists() or not integration.model_is_gated(model):
        return
    if _has_hf_token() or _has_cached_snapshot(model):
        return
    raise ToolInputError(
        "gated_model", f"{model} is in a gated Hugging Face repository, and there is no token (HF_TOKEN, "
        "HUGGING_FACE_HUB_TOKEN or a token file in the Hugging Face home) and no cached snapshot.",
        "Accept the license on the model's Hugging Face page, then set HF_TOKEN in the MCP server's environment "
        "or run `huggingface-cli login`.", flag="model")


def _free_gb(path: Path) -> float | None:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free / 1024**3
    except OSError:
        return None


def check_disk(path: Path, need: float, what: str, flag: str | None = "output_dir") -> None:
    free = _free_gb(path)
    if free is not None and free < need:
        raise ToolInputError("disk_full", f"Only {free:.2f} GiB free under {path}; a run needs at least {need} GiB "
                             f"for {what}.", "Free disk space, or pass output_dir on a larger disk."
                             if flag == "output_dir" else f"Free disk space under {path}, or set "
                             "SGLANG_DIFFUSION_MCP_HOME to a folder on a larger disk.", flag=flag)


def check_writable(path: Path) -> None:
    """output_dir must be a folder we can create and write in (e.g. not under /proc)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ToolInputError("output_dir_not_writable", f"output_dir {path} is not a writable folder: "
                             f"{exc.strerror or exc}.", "Pass an output_dir you can create and write to, or leave it "
                             "out to keep outputs in the run folder.", flag="output_dir") from None




def check_env(env: object) -> dict[str, str]:
    """The caller's extra environment variables: names like shell variables, string values."""
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise ToolInputError("bad_input", "env must be an object of NAME: value strings.",
                             "Pass e.g. {\"SGLANG_CACHE_DIT_ENABLED\": \"true\"}.", flag="env")
    if len(env) > MAX_ENV_VARS:
        raise ToolInputError("bad_input", f"env has {len(env)} variables; at most {MAX_ENV_VARS}.",
                             "Pass only the variables the run needs.", flag="env")
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise ToolInputError("bad_input", f"env name {str(name)[:80]!r} is not an environment variable name.",
                                 "Use letters, digits and '_', not starting with a digit.", flag="env")
        if not isinstance(value, str) or "\0" in value or len(value) > 32_768:
            raise ToolInputError("bad_input", f"env {name} must be a string (no NUL, at most 32 KiB).",
                                 f"Pass {name} as a string, e.g. \"1\" or \"true\".", flag="env")
        if name in ("PATH", "PYTHONPATH", "LD_PRELOAD", "LD_LIBRARY_PATH"):
            raise ToolInputError("bad_input", f"env sets {name}, which decides how sglang itself starts.",
                                 f"Leave {name} to the server's environment; point {SGLANG_ENV} at the sglang "
                                 "executable to use.", flag="env")
        if name in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", runner.RUN_MARKER_ENV):
            raise ToolInputError("conflicting_input", f"env sets {name}, which run_generate sets for the run.",
                                 "Choose GPUs with gpus=[...] instead." if name.startswith("CUDA") else
                                 f"Drop {name} from env.", flag="env")
    return dict(env)
