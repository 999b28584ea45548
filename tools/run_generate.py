"""run_generate, get_run, cancel_run, list_runs: measured `sglang generate` runs that outlive the server."""

from __future__ import annotations

import os
import re
import shlex
import signal
import time
from pathlib import Path
from typing import Awaitable, Callable

import anyio

from ..server.settings import SGLANG_ENV, sglang_command, state_home
from ..knowledge import releases
from .planning.cmdline import command_line
from .problems import Problem, ToolInputError, cap_list
from .runs import gpu_lock, integration, runner, store
from .runs.model import Addition, CancelResult, ListRunsResult, RunResult, RunSummary
from .runs.prechecks import check_disk, check_env, check_gated, check_launchable, check_writable
from .runs.redact import Redactor, env_for_record, is_secret_name
from .runs.results import finalize, view

ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]
STATUSES = ("queued", "running", "succeeded", "failed", "timeout", "cancelled", "interrupted")
# Paths the tool owns: they must stay in the run folder or output_dir.
OWNED_FLAGS = ("--perf-dump-path", "--output-path", "--output-file-name")
WORKLOAD_FLAGS = {"width": "--width", "height": "--height", "num_frames": "--num-frames",
                  "num_inference_steps": "--num-inference-steps", "seed": "--seed"}
SYNC_ENV = "SGLANG_DIFFUSION_SYNC_STAGE_PROFILING"
PATH_FLAG = re.compile(r"^--[a-z0-9-]*(path|dir|config|file)$")
PROFILER_DIR_ENVS = ("SGLANG_DIFFUSION_TORCH_PROFILER_DIR", "SGLANG_TORCH_PROFILER_DIR")
FLASHINFER_ENV = "FLASHINFER_DISABLE_VERSION_CHECK"
MIN_FREE_GB = {"image": 1.0, "video": 4.0}
MIN_STATE_FREE_GB = 0.2  # the state home keeps logs, perf dumps and the history when outputs go elsewhere
# Env names (never values) a run's record keeps besides the allowlisted ones (values) and secrets (names):
# the variables that can change what sglang does or how fast. The whole environment would be hundreds of
# names, mostly the shell's; these prefixes keep the record bounded. Variables the caller passes in `env`
# are always named.
ENV_NAME_PREFIXES = ("SGLANG_", "FLASHINFER_", "CUDA_", "NCCL_", "PYTORCH_", "TORCH_", "TORCHINDUCTOR_", "TRITON_",
                     "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "DIFFUSERS_", "TOKENIZERS_", "NVIDIA_", "NVTE_", "OMP_",
                     "MKL_", "LD_PRELOAD", "LD_LIBRARY_PATH")
GRACE_ENV = "SGLANG_DIFFUSION_MCP_KILL_GRACE_S"  # SIGTERM -> SIGKILL grace period


def _grace_s() -> float:
    try:
        return min(max(float(os.environ.get(GRACE_ENV, runner.GRACE_S)), 0.1), 120.0)
    except ValueError:
        return runner.GRACE_S


# -- argv handling ----------------------------------------------------------------------------------

def _strip_prefix(argv: list[str]) -> list[str]:
    """Accept a recommend_flags argv (`sglang generate ...`) or bare extra flags."""
    if argv and "generate" in argv[:3] and not argv[0].startswith("-"):
        return argv[argv.index("generate") + 1:]
    return list(argv)


def _take_flag(argv: list[str], flag: str) -> tuple[list[str], list[str]]:
    """Remove every `flag value` / `flag=value` from argv; returns (rest, values)."""
    rest, values, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == flag:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                values.append(argv[i + 1])
                i += 2
                continue
            values.append("")
        elif a.startswith(flag + "="):
            values.append(a.split("=", 1)[1])
        else:
            rest.append(a)
        i += 1
    return rest, values


def _has_flag(argv: list[str], *flags: str) -> str | None:
    for a in argv:
        name = a.split("=", 1)[0]
        if name in flags:
            return name
    return None


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def _pair(flag: str, value: str) -> list[str]:
    # `--flag=value` keeps a value that starts with '-' from being read as a flag
    return [f"{flag}={value}"] if value.startswith("-") else [flag, value]


# -- sglang -----------------------------------------------------------------------------------------

def _sglang() -> tuple[list[str], str]:
    cmd = sglang_command()
    if runner.resolve_executable(cmd) is None:
        where = f"${SGLANG_ENV} is {os.environ[SGLANG_ENV]!r}" if os.environ.get(SGLANG_ENV) else \
            f"${SGLANG_ENV} is not set and there is no `sglang` on PATH"
        raise ToolInputError(
            "sglang_not_found", f"Cannot run sglang: {where}.",
            "Install it where this server runs (pip install 'sglang[diffusion]', or use the SGLang diffusion "
            f"container), or set {SGLANG_ENV} to its command line, e.g. '/opt/venv/bin/sglang'.")
    return cmd, str(cmd)


async def _version(cmd: list[str], home: Path) -> str:
    version = await anyio.to_thread.run_sync(
        lambda: runner.sglang_version(cmd, cache_file=str(home / "sglang_version.json")))
    if not version:
        raise ToolInputError("sglang_version_unknown", f"`{shlex.join([*cmd, 'version'])}` did not print "
                             "'sglang version: X' within the timeout.",
                             f"Check that the command runs, or set {SGLANG_ENV} to a working sglang.")
    return version


# -- GPUs -------------------------------------------------------------------------------------------

def _choose_gpus(gpus: list[int] | None, needed: int, warnings: list[Problem], detected: tuple,
                 locks_dir: str | None = None) -> tuple[list, dict, str | None, str | None]:
    """(GPUs for the record and locks, env to set, GPU type, hardware spec).

    Chosen automatically, idle GPUs that another run holds (its GPU lock) come last: runs started close
    together spread over the free GPUs instead of queueing on the first."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    tokens = [t.strip() for t in visible.split(",") if t.strip()] if visible else None
    as_gpu = lambda t: int(t) if str(t).isdigit() else t  # noqa: E731
    idle, gpu_type, _ = detected
    hardware = None
    if gpus is not None:
        if any(not isinstance(g, int) or g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
            raise ToolInputError("bad_gpus", f"gpus must be distinct GPU indices >= 0, got {gpus}.",
                                 "Pass e.g. [0] or [0, 1].", flag="gpus")
        if tokens is not None:  # indices into the visible set the environment already fixed
            if max(gpus, default=-1) >= len(tokens):
                raise ToolInputError("bad_gpus", f"CUDA_VISIBLE_DEVICES={visible} shows {len(tokens)} GPU(s); "
                                     f"gpus={gpus} is out of range.", "Use indices within the visible GPUs.",
                                     flag="gpus")
            chosen = [tokens[g] for g in gpus]
            return [as_gpu(t) for t in chosen], {"CUDA_VISIBLE_DEVICES": ",".join(chosen)}, gpu_type, hardware
        return list(gpus), {"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus)), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, \
            gpu_type, hardware
    if tokens is not None:  # respected as it is
        return [as_gpu(t) for t in tokens], {}, gpu_type, hardware
    if idle is not None and len(idle) >= needed:
        busy = gpu_lock.busy(locks_dir) if locks_dir else set()
        free = [g for g in idle if gpu_lock.lock_key(g) not in busy]
        chosen = (free + [g for g in idle if g not in free])[:needed]
    else:
        chosen = list(range(needed))
        warnings.append(Problem(code="gpus_not_detected" if idle is None else "not_enough_idle_gpus",
                                message=f"Using GPU(s) {chosen}: " + ("no GPU detection available." if idle is None
                                        else f"only {len(idle)} idle GPU(s) for {needed} needed."),
                                fix="Pass gpus=[...] to choose them.", flag="gpus"))
    env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, chosen)), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    return chosen, env, gpu_type, hardware


def _take_gpu_locks(home: Path, chosen: list, run_id: str, shared: bool) -> tuple[list[int], list[str]]:
    """Take the run's GPU locks now if they are free (the supervisor inherits them), so the next run's
    automatic choice already sees them taken. Returns (descriptors, what blocks); blocked runs queue."""
    if not chosen:
        return [], []
    locks = gpu_lock.GpuLocks(str(home / "locks"), [str(g) for g in chosen], run_id, shared=shared)
    blocked = locks.try_acquire()
    return list(locks.fds), blocked


# -- waiting ----------------------------------------------------------------------------------------

async def _wait(rdir: str, wait_s: float, progress: ProgressCallback | None) -> RunResult:
    start = time.monotonic()
    deadline = start + max(0.0, wait_s)
    sent = None
    while True:
        runner.reap_children()  # a long-lived server keeps no zombie supervisors
        result = view(rdir)
        if result is None:
            raise ToolInputError("unknown_run", f"The run folder {rdir} has no record.", "Check the run_id.")
        message = f"{result.status}: {result.progress_message or result.phase or ''}".strip(": ")
        if progress is not None and (result.progress, message) != sent:
            sent = (result.progress, message)
            try:
                await progress(result.progress, 1.0, message)
            except Exception:
                pass  # a client that went away must not stop the run or the wait
        if result.status in store.TERMINAL or time.monotonic() >= deadline:
            return result
        elapsed = time.monotonic() - start
        await anyio.sleep(min(0.1, 0.01 + elapsed * 0.03, max(0.0, deadline - time.monotonic())))


def _rdir_for(run_id: str) -> str:
    if not isinstance(run_id, str) or not store.valid_run_id(run_id):
        raise ToolInputError("unknown_run", f"{run_id!r} is not a run id.", "Use a run_id from run_generate or "
                             "list_runs.", flag="run_id")
    rdir = store.run_dir(str(state_home()), run_id)
    if not os.path.exists(os.path.join(rdir, "run.json")):
        raise ToolInputError("unknown_run", f"There is no run {run_id} under {state_home()}.",
                             "Use list_runs to see the runs; SGLANG_DIFFUSION_MCP_HOME must match the server that "
                             "started it.", flag="run_id")
    return rdir


# -- tools ------------------------------------------------------------------------------------------

async def run_generate(
    model: str,
    prompt: str,
    argv: list[str] | None = None,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    num_inference_steps: int | None = None,
    seed: int | None = None,
    gpus: list[int] | None = None,
    output_dir: str | None = None,
    timeout_s: float = 3600.0,
    wait_s: float = 50.0,
    repeats: int = 1,
    profile: bool = False,
    allow_unknown_flags: bool = False,
    allow_shared_gpus: bool = False,
    env: dict[str, str] | None = None,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Run `sglang generate` as a measured, detached run and return its timings, VRAM analysis, outputs and a classified error.

    Adds what a trustworthy measurement needs for the installed sglang release (warmup, a perf dump, the
    VRAM analysis log level, synchronized stage timing) and lists each addition. Waits up to wait_s
    (default 50 s) and returns the finished result, or the current status with a run_id to poll with
    get_run; the run continues if the caller gives up, until cancel_run or timeout_s. `argv` takes a
    recommend_flags argv or extra flags; arguments never pass through a shell. GPUs: `gpus`, else the
    idle ones; a GPU is never shared with another run unless allow_shared_gpus. `profile=true` adds sglang's
    torch profiler (--profile; traces in the run folder, listed in trace_paths) for plan_kernel_handoff; a
    profiled run's timings are not baseline numbers. `env`: extra environment variables for the run, e.g. a
    recommend_flags result's `env` (run_generate(argv=plan.argv, env=plan.env)); secret values are redacted.
    """
    warnings: list[Problem] = []
    if not isinstance(model, str) or not model.strip():
        raise ToolInputError("bad_input", "model is empty.", "Pass a Hugging Face id or a local path.", flag="model")
    if not isinstance(prompt, str):
        raise ToolInputError("bad_input", "prompt must be a string.", "Pass the prompt text.", flag="prompt")
    for name, value in (("width", width), ("height", height), ("num_frames", num_frames),
                        ("num_inference_steps", num_inference_steps)):
        if value is not None and not (isinstance(value, int) and 0 < value <= 100_000):
            raise ToolInputError("bad_input", f"{name}={value!r} is not a positive integer.", "", flag=name)
    if not 1 <= int(repeats) <= 20:
        raise ToolInputError("bad_input", f"repeats={repeats} is out of range.", "Use 1 to 20.", flag="repeats")
    if not 0 < float(timeout_s) <= 7 * 24 * 3600:
        raise ToolInputError("bad_input", f"timeout_s={timeout_s} is out of range.", "Use 1 s to 7 days.",
                             flag="timeout_s")
    wait_s = min(max(0.0, float(wait_s)), 3600.0)
    caller_env = check_env(env)
    check_launchable(prompt, argv, caller_env)
    user = _strip_prefix([str(a) for a in (argv or [])])
    owned = _has_flag(user, *OWNED_FLAGS)
    if owned:
        raise ToolInputError("path_outside_run", f"{owned} is set by run_generate so outputs and dumps stay in the "
                             "run folder.", "Remove it; pass output_dir to choose where outputs go.", flag=owned)
    for flag, value in (("--model-path", model), ("--prompt", prompt)):
        user, values = _take_flag(user, flag)
        if any(v != value for v in values):
            raise ToolInputError("conflicting_input", f"argv has {flag} {values[0]!r} but the call says {value!r}.",
                                 f"Drop {flag} from argv.", flag=flag)
    # sglang runs with the run folder as its working directory: make relative paths of path flags absolute
    user = [os.path.abspath(a) if i and PATH_FLAG.search(user[i - 1]) and not a.startswith("-")
            and not os.path.isabs(a) and os.path.exists(a) else a for i, a in enumerate(user)]
    if not os.path.isabs(model) and os.path.exists(model):
        model = os.path.abspath(model)
    workload: dict[str, int | None] = {}
    for name, flag in WORKLOAD_FLAGS.items():
        explicit = {"width": width, "height": height, "num_frames": num_frames,
                    "num_inference_steps": num_inference_steps, "seed": seed}[name]
        in_argv = _flag_value(user, flag)
        if explicit is not None and in_argv is not None and str(explicit) != in_argv:
            raise ToolInputError("conflicting_input", f"argv has {flag} {in_argv} but {name}={explicit}.",
                                 f"Give {name} once.", flag=flag)
        if explicit is not None and in_argv is None:
            user += [flag, str(explicit)]
        value = explicit if explicit is not None else in_argv
        workload[name] = int(value) if value is not None and str(value).lstrip("-").isdigit() else None

    cmd, _ = _sglang()
    home = state_home()
    version = await _version(cmd, home)

    detected = integration.detect_idle_gpus()  # once: checks the command against this host, then picks GPUs
    errors, check_warnings = integration.check_command(["sglang", "generate", "--model-path", model, *user],
                                                      version, detected[2])
    warnings += check_warnings
    if allow_unknown_flags:
        warnings += [e for e in errors if e.code == "unknown_flag"]
        errors = [e for e in errors if e.code != "unknown_flag"]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more: {', '.join(e.code for e in errors[1:])})" if len(errors) > 1 else ""
        raise ToolInputError(first.code, first.message + more, first.fix, flag=first.flag)

    check_gated(model)
    run_id = store.new_run_id()
    rdir = store.run_dir(str(home), run_id)
    out_dir = Path(output_dir).expanduser().resolve() if output_dir else Path(rdir)
    video = (workload.get("num_frames") or 1) > 1
    need = MIN_FREE_GB["video" if video else "image"]
    if output_dir:
        check_writable(out_dir)
        check_disk(out_dir, need, "its outputs")
        check_disk(home, MIN_STATE_FREE_GB, "its log and perf dumps in the state home", flag=None)
    else:
        check_disk(home, need, "its outputs, perf dump and log")

    num_gpus_flag = _flag_value(user, "--num-gpus")
    needed = int(num_gpus_flag) if num_gpus_flag and num_gpus_flag.isdigit() else (len(gpus) if gpus else 1)
    chosen, gpu_env, gpu_type, hardware = _choose_gpus(gpus, needed, warnings, detected, str(home / "locks"))
    if gpus and num_gpus_flag is None and len(gpus) > 1:
        warnings.append(Problem(code="num_gpus_unset", message=f"{len(gpus)} GPUs given but argv has no --num-gpus; "
                                "sglang uses its default.", fix=f"Add --num-gpus {len(gpus)} to argv.", flag="--num-gpus"))

    additions: list[Addition] = []
    extra: list[str] = []
    warmup_added = True
    if _has_flag(user, "--warmup", "--warmup-mode"):
        mode = _flag_value(user, "--warmup-mode") or _flag_value(user, "--warmup")
        if mode in ("off", "false", "False", "0"):
            warmup_added = False
            warnings.append(Problem(code="warmup_off", message="Warmup is off, so the timing includes first-use cost.",
                                    fix="Drop the warmup flag from argv and let run_generate add it."))
    else:
        flags = releases.warmup_argv(version)
        extra += flags
        additions.append(Addition(kind="flag", name=flags[0], value=" ".join(flags[1:]) or None,
                                  reason=f"Warmup, so the '(with warmup excluded)' time is a warm timing; spelled "
                                         f"for sglang {version} (--warmup up to 0.5.13, --warmup-mode request from 0.5.14)."))
    vram_flags = releases.vram_log_argv(version)
    if vram_flags and not _has_flag(user, "--log-level"):
        extra += vram_flags
        additions.append(Addition(kind="flag", name=vram_flags[0], value=" ".join(vram_flags[1:]) or None,
                                  reason="From 0.5.10 sglang prints its VRAM analysis only at debug level."))
    elif vram_flags and (_flag_value(user, "--log-level") or "").lower() != "debug":
        warnings.append(Problem(code="vram_analysis_off", message=f"argv sets --log-level "
                                f"{_flag_value(user, '--log-level')}; sglang {version} prints its VRAM analysis only "
                                "at debug level, so this run's result has no VRAM analysis (peak, headroom, what "
                                "could stay resident).", fix="Drop --log-level from argv (run_generate then adds "
                                "--log-level debug), or pass --log-level debug.", flag="--log-level"))
    profile_env: dict[str, str] = {}
    if profile:
        extra.append("--profile")
        additions.append(Addition(kind="flag", name="--profile", value=None,
                                  reason="sglang's torch profiler, for plan_kernel_handoff; these timings are not "
                                         "baseline numbers."))
        traces = str(Path(rdir) / "traces")
        # 0.5.9-0.5.10.post1 read SGLANG_TORCH_PROFILER_DIR, 0.5.11+ the diffusion one; older write ./logs,
        # which is the run folder since sglang runs there
        profile_env = {name: traces for name in PROFILER_DIR_ENVS}
        warnings.append(Problem(code="profiled_run", message="This run is profiled: its timings include profiler "
                                "overhead and are not baseline numbers.",
                                fix="Take baselines from an unprofiled run of the same command."))
    additions.append(Addition(kind="flag", name="--perf-dump-path", value=str(Path(rdir) / "perf-<n>.json"),
                              reason="Per-stage and per-step timings and memory checkpoints, in the run folder."))
    additions.append(Addition(kind="flag", name="--output-path", value=str(out_dir),
                              reason="Outputs go to the run folder or output_dir, under the run's own file name."))

    env_add: dict[str, str] = {}
    base_env = {**os.environ, **caller_env}
    for name, reason in ((SYNC_ENV, "Synchronize at stage boundaries so queued GPU work is not billed to a later stage."),
                         (FLASHINFER_ENV, "Skip FlashInfer's version check, which can stop a run on a harmless mismatch.")):
        if name in base_env:
            if base_env[name] != "1":
                where = "env" if name in caller_env else "the environment"
                warnings.append(Problem(code="env_kept", message=f"{name}={base_env[name]} kept from {where}.",
                                        fix=f"Set {name}=1 for the measurement run_generate intends."))
            continue
        env_add[name] = "1"
        additions.append(Addition(kind="env", name=name, value="1", reason=reason))
    for name, value in profile_env.items():
        env_add[name] = value
        additions.append(Addition(kind="env", name=name, value=value, reason="Where sglang writes profiler traces."))
    for name, value in gpu_env.items():
        env_add[name] = value
        additions.append(Addition(kind="env", name=name, value=value,
                                  reason="The run's GPUs, as integer indices in PCI bus order." if name.startswith("CUDA_V")
                                  else "Indices follow nvidia-smi's PCI bus order."))

    base_argv = [*cmd, "generate", *_pair("--model-path", model), *_pair("--prompt", prompt), *user, *extra]
    argv_runs, log_paths, perf_paths, stems = [], [], [], []
    for i in range(int(repeats)):
        stem = f"{run_id}-r{i + 1}"
        perf = os.path.join(rdir, f"perf-{i + 1}.json")
        argv_runs.append([*base_argv, "--perf-dump-path", perf, "--output-path", str(out_dir),
                          "--output-file-name", stem])
        log_paths.append(os.path.join(rdir, f"sglang-{i + 1}.log"))
        perf_paths.append(perf)
        stems.append(stem)

    shown = ["sglang", *argv_runs[0][len(cmd):]]  # the product's form: argv starts with sglang generate
    child_env = {**base_env, **env_add, runner.RUN_MARKER_ENV: run_id}
    redactor = Redactor.from_env(child_env)  # the server's secrets and any the caller passed in env
    # Values for the allowlist, names for the rest of what matters (see ENV_NAME_PREFIXES), never a secret value
    env_names = [k for k in child_env if k != runner.RUN_MARKER_ENV and (
        k in env_add or k in caller_env or is_secret_name(k) or k.startswith(ENV_NAME_PREFIXES))]
    added_flags = sorted({a.name for a in additions if a.kind == "flag"} | set(OWNED_FLAGS))
    lock_fds, blocked = _take_gpu_locks(home, chosen, run_id, allow_shared_gpus)
    record = {
        "run_id": run_id, "home": str(home), "run_dir": rdir, "created_at": store.now_iso(), "status": "queued",
        "model": model, "prompt": redactor.text(prompt),
        "command": redactor.text(command_line(shown, {**caller_env, **env_add})), "argv": redactor.data(shown),
        "env": redactor.data(env_for_record(child_env, env_names)), "added_flags": added_flags,
        "waiting_for": "waiting for " + ", ".join(blocked) if blocked else None,
        "additions": [a.model_dump() for a in additions], "warnings": [w.model_dump() for w in warnings],
        "gpus": chosen, "hardware": hardware or (f"{len(chosen)}x{gpu_type}" if gpu_type else None),
        "sglang_version": version, "timeout_s": float(timeout_s), "repeats": int(repeats),
        "workload": {"model": model, "gpu_type": gpu_type, "gpu_count": len(chosen), "width": workload["width"],
                     "height": workload["height"], "frames": workload["num_frames"],
                     "steps": workload["num_inference_steps"]},
        "output_dir": str(out_dir), "output_stems": stems, "log_paths": log_paths, "perf_paths": perf_paths,
        "warmup_added": warmup_added, "allow_shared_gpus": bool(allow_shared_gpus), "profile": bool(profile),
    }
    try:
        store.create_record(rdir, record)
        out_dir.mkdir(parents=True, exist_ok=True)
        store.save_history(str(home), record)
        spec = {"run_id": run_id, "argv_runs": argv_runs, "log_paths": log_paths, "perf_paths": perf_paths,
                "timeout_s": float(timeout_s), "lock_gpus": [str(g) for g in chosen],
                "locks_dir": str(home / "locks"), "allow_shared": bool(allow_shared_gpus), "grace_s": _grace_s(),
                "held_lock_fds": lock_fds}
        runner.spawn_supervisor(rdir, spec, child_env, pass_fds=tuple(lock_fds))
    finally:
        for fd in lock_fds:  # the supervisor has its own copies now (or, if it failed to start, nobody)
            os.close(fd)
    return await _wait(rdir, wait_s, progress)


async def get_run(run_id: str, wait_s: float = 0.0, progress: ProgressCallback | None = None) -> RunResult:
    """Status and, once ended, the full result of a run_generate run; waits up to wait_s for it to end.

    Works from any server process or the CLI (`sglang-diffusion-mcp call get_run`), also after the server that
    started the run has gone. Gives progress (0..1, from the log), the phase, and a 40-line log tail.
    """
    rdir = _rdir_for(run_id)
    return await _wait(rdir, min(max(0.0, float(wait_s)), 3600.0), progress)


async def cancel_run(run_id: str) -> CancelResult:
    """Stop a queued or running run: SIGTERM to its process group, SIGKILL after a grace period; nothing is left running.

    Only cancel_run or timeout_s stop a run; a client giving up on run_generate or get_run does not.
    """
    rdir = _rdir_for(run_id)
    runner.reap_children()
    before = view(rdir)
    if before.status in store.TERMINAL:
        return CancelResult(run_id=run_id, status=before.status, was=before.status,
                            message=f"The run had already ended ({before.status}); nothing to stop.")
    Path(rdir, "cancel").touch()
    record = store.read_record(rdir) or {}
    pid = record.get("supervisor_pid")
    if store.supervisor_alive(rdir) and pid and runner.pid_running(pid, record.get("supervisor_start")):
        try:
            os.kill(int(pid), signal.SIGTERM)
        except OSError:
            pass
    # The supervisor sees the cancel file even before it has recorded its pid.
    deadline = time.monotonic() + _grace_s() + 5.0
    while time.monotonic() < deadline and store.supervisor_alive(rdir):
        rec = store.read_record(rdir) or {}
        if rec.get("outcome"):
            break
        await anyio.sleep(0.02)
    rec = store.read_record(rdir) or {}
    if not rec.get("outcome"):
        # No supervisor to do it: stop the group ourselves and record the cancel.
        await anyio.to_thread.run_sync(reconcile_cancel, rdir)
    after = view(rdir)
    return CancelResult(run_id=run_id, status=after.status, was=before.status,
                        message="Stopped: SIGTERM to the process group, then SIGKILL after the grace period; reaped."
                        if after.status == "cancelled" else f"The run ended as {after.status} before the cancel landed.")


def reconcile_cancel(rdir: str) -> None:
    record = store.read_record(rdir) or {}
    if record.get("pgid") and runner.pid_running(record["pgid"], record.get("pid_start")):
        runner.stop_group(int(record["pgid"]), grace_s=_grace_s())
    runner.sweep_marked(record.get("run_id", ""))
    store.update_record(rdir, lambda r: r if r.get("outcome") else r | {"outcome": "cancelled",
                                                                          "ended_at": store.now_iso()})
    finalize(rdir)


def list_runs(model: str | None = None, status: str | None = None, hardware: str | None = None,
              limit: int = 20) -> ListRunsResult:
    """List recorded runs, newest first, from the run history; filter by model, status and hardware (e.g. '1xH100').

    Capped at `limit` (max 100) with `total` and `truncated`. Use get_run for one run's full result.
    """
    if status is not None and status not in STATUSES:
        raise ToolInputError("bad_input", f"status {status!r} is not a run status.", f"Use one of {', '.join(STATUSES)}.",
                             flag="status")
    if not 1 <= int(limit) <= 100:
        raise ToolInputError("bad_limit", f"limit must be between 1 and 100, got {limit}.",
                             "Pass a smaller limit and filter by model, status or hardware.", flag="limit")
    home = str(state_home())
    runner.reap_children()
    reconcile_all(home)
    if status in store.ACTIVE:
        # The history row of a live run says what it was at creation (queued); its record says what it is now.
        rows, _ = store.query_history(home, model=model, statuses=store.ACTIVE, hardware=hardware, limit=10_000)
        for row in rows:
            row["status"] = (store.read_record(row.get("run_dir") or "") or {}).get("status", row["status"])
        rows = [row for row in rows if row["status"] == status]
        total, rows = len(rows), rows[:limit]
    else:
        rows, total = store.query_history(home, model=model, status=status, hardware=hardware, limit=limit)
    runs = []
    for row in rows:
        if row.get("status") in store.ACTIVE:  # history lags a running run: the record is current
            rec = store.read_record(row.get("run_dir") or "") or {}
            row["status"] = rec.get("status", row["status"])
        runs.append(RunSummary.model_validate({k: row.get(k) for k in RunSummary.model_fields}))
    runs, _, _ = cap_list(runs, limit)
    return ListRunsResult(runs=runs, total=total, truncated=total > len(runs))


def reconcile_all(home: str | None = None) -> int:
    """Close runs that ended while no server watched, and mark vanished ones interrupted. Returns how many changed."""
    home = home or str(state_home())
    changed = 0
    for run_id in store.active_run_ids(home):
        rdir = store.run_dir(home, run_id)
        record = store.read_record(rdir)
        if record is None:
            continue
        if record.get("outcome") or not store.supervisor_alive(rdir):
            view(rdir)
            changed += 1
    return changed
