"""Turn a run folder into a RunResult: live progress while it runs, the parsed and classified result once it
has ended (`finalize`, idempotent, done by whoever gets there first), and reconciliation of runs whose
supervisor vanished."""

from __future__ import annotations

import glob
import os
import statistics
from collections import OrderedDict
from pathlib import Path

from ..problems import Problem
from . import integration, runner, store
from .log_progress import ELLIPSIS, LINE_CHARS, LogFollower, LogState, cap_line, read_log
from .model import RunResult
from .redact import Redactor

FIXES = {
    "oom": "Lower width/height/frames, turn on offload (--dit-cpu-offload, --text-encoder-cpu-offload), or spread "
           "the model over more GPUs; parse_vram_log on log_path says what to change.",
    "gated_model": "Accept the model's license on its Hugging Face page, then set HF_TOKEN (or run "
                   "`huggingface-cli login`) in the environment of the MCP server.",
    "model_not_found": "Check the model id (org/name on Hugging Face) or the local path.",
    "bad_flag": "Check the flags against this sglang release with check_command; the log tail shows argparse's error.",
    "cuda": "Check the GPU and driver (nvidia-smi); the log tail shows the CUDA error.",
    "nccl": "Check the GPU interconnect (nvidia-smi topo -m); try fewer GPUs or NCCL_P2P_DISABLE=1; see the log tail.",
    "diffusers_fallback": "The model ran on the diffusers backend, so these timings are not SGLang's. Use a model "
                          "sglang supports natively, or pass --backend diffusers explicitly to measure diffusers.",
    "no_perf_dump": "sglang exited 0 but wrote no perf dump or output; the log tail says why (often 'Generation failed').",
    "disk_full": "Free disk space, or pass output_dir on a larger disk.",
    "timeout": "Raise timeout_s (first runs download and compile), or make the workload lighter.",
    "cancelled": "",
    "unknown": "Read the log tail, and log_path for the whole log.",
}

TAIL_CHARS = 6000  # the whole log_tail; log_path has everything
SERVER_ARGS_CHARS = 8000
VERSION_CACHE_FILE = "sglang_version.json"

_followers: OrderedDict[tuple[str, int], LogFollower] = OrderedDict()


def problem(code: str, message: str) -> Problem:
    return Problem(code=code, message=message, fix=FIXES.get(code, FIXES["unknown"]))


def _follower(record: dict, index: int) -> LogFollower | None:
    paths = record.get("log_paths") or []
    if index >= len(paths):
        return None
    key = (record["run_id"], index)
    f = _followers.get(key)
    if f is None:
        f = _followers[key] = LogFollower(paths[index], warmup_expected=bool(record.get("warmup_added", True)),
                                          live=True)
        while len(_followers) > 64:
            _followers.popitem(last=False)
    _followers.move_to_end(key)
    f.poll()
    return f


def capped_tail(lines: list[str]) -> list[str]:
    """The last lines that fit in TAIL_CHARS (each already at most LINE_CHARS), with a marker if some were cut."""
    kept, total = [], 0
    for line in reversed(lines):
        line = cap_line(line) or ""
        if total + len(line) > TAIL_CHARS:
            kept.append(f"[{len(lines) - len(kept)} earlier line(s) cut; the whole log is at log_path]")
            break
        kept.append(line)
        total += len(line)
    return kept[::-1]


def capped_server_args(value):
    """sglang's server_args as a result carries it: long values cut, at most SERVER_ARGS_CHARS in all."""
    if isinstance(value, str):
        return cap_line(value, SERVER_ARGS_CHARS)
    if not isinstance(value, dict):
        return value
    import json

    out, total = {}, 0
    for key, item in value.items():
        if isinstance(item, str):
            item = cap_line(item)
        elif isinstance(item, (dict, list)):
            text = json.dumps(item, default=str)
            if len(text) > LINE_CHARS:
                item = cap_line(text)
        size = len(str(key)) + len(json.dumps(item, default=str)) + 4
        if total + size > SERVER_ARGS_CHARS:
            out["_truncated"] = f"{len(value) - len(out)} more key(s) cut{ELLIPSIS}; the whole line is in the log"
            break
        out[str(key)[:LINE_CHARS]] = item
        total += size
    return out


def _base(record: dict) -> dict:
    return {k: record.get(k) for k in ("run_id", "status", "command", "argv", "env", "gpus", "hardware",
                                       "sglang_version", "additions", "created_at", "started_at", "ended_at",
                                       "exit_code", "waiting_for", "run_dir")} | {
        "warnings": record.get("warnings") or [],
        "log_path": (record.get("log_paths") or [None])[0],
    }


def live_result(record: dict) -> RunResult:
    """A queued or running run, with progress from its log."""
    data = _base(record)
    repeats = max(1, int(record.get("repeats") or 1))
    index = max(0, int(record.get("repeat") or 1) - 1)
    f = _follower(record, index) if record.get("status") == "running" else None
    if f is not None:
        st = f.state
        data["phase"] = st.phase
        data["progress_message"] = st.message() + (f" (repeat {index + 1}/{repeats})" if repeats > 1 else "")
        data["progress"] = round((index + st.fraction()) / repeats, 4)
        redactor = Redactor.from_env()
        data["log_tail"] = redactor.data(capped_tail(list(st.tail)))
        data["log_path"] = f.path
        data["server_args"] = redactor.data(capped_server_args(st.server_args))
    else:
        data["phase"] = "queued" if record.get("status") == "queued" else None
    data["status"] = record.get("status") or "queued"
    return RunResult.model_validate(data)


def final_result(record: dict) -> RunResult:
    return RunResult.model_validate(record["result"])


def view(rdir: str) -> RunResult | None:
    """The run as it stands now; closes it first if it has ended."""
    record = store.read_record(rdir)
    if record is None:
        return None
    if record.get("finalized") and record.get("result"):
        return final_result(record)
    if record.get("outcome"):
        record = finalize(rdir)
        return final_result(record)
    if not store.supervisor_alive(rdir):
        record = reconcile(rdir)
        if record.get("finalized"):
            return final_result(record)
    return live_result(record)


# -- closing a run -------------------------------------------------------------------------------------

def reconcile(rdir: str) -> dict:
    """A run whose supervisor is gone without an outcome: stop what it left, mark it interrupted."""
    record = store.read_record(rdir) or {}
    if record.get("finalized") or record.get("outcome") or store.supervisor_alive(rdir):
        return finalize(rdir) if record.get("outcome") and not record.get("finalized") else record
    pgid = record.get("pgid")
    if pgid and runner.pid_running(pgid, record.get("pid_start")):
        runner.stop_group(int(pgid))
    if record.get("run_id"):
        runner.sweep_marked(record["run_id"])
    store.update_record(rdir, lambda r: r if r.get("outcome") else r | {"outcome": "vanished",
                                                                          "ended_at": store.now_iso()})
    return finalize(rdir)


def finalize(rdir: str) -> dict:
    """Parse and classify an ended run, write its result, history row and sidecars. Idempotent."""
    with store.run_lock(rdir):
        record = store.read_record(rdir) or {}
        if record.get("finalized") or not record.get("outcome"):
            return record
        result = _conclude(record)
        record["status"] = result.status
        record["result"] = result.model_dump(mode="json")
        record["finalized"] = True
        record["updated_at"] = store.now_iso()
        store.write_json_atomic(os.path.join(rdir, "run.json"), record)
    home = record.get("home")
    if home:
        store.save_history(home, record)
    for path in result_perf_paths(record):
        store.write_sidecar(path, _sidecar_facts(record))
    return record


def result_perf_paths(record: dict) -> list[str]:
    return [p for p in record.get("perf_paths") or [] if os.path.exists(p)]


def _compiled(flags: list[str]) -> bool:
    """--enable-torch-compile given and not set to false (it takes an optional true/false)."""
    for i, flag in enumerate(flags):
        name, _, inline = flag.partition("=")
        if name == "--enable-torch-compile":
            value = inline or (flags[i + 1] if i + 1 < len(flags) and not flags[i + 1].startswith("-") else "true")
            return value.lower() != "false"
    return False


def _sidecar_facts(record: dict) -> dict:
    """tools/perf_dump.RunFacts fields first (compare_perf reads them), then the rest of the record's facts."""
    result = record.get("result") or {}
    w = record.get("workload") or {}
    argv = record.get("argv") or []
    flags = argv[2:] if argv[:2] == ["sglang", "generate"] else argv
    env = record.get("env") or {}
    return {
        "run_id": record.get("run_id"), "sglang_version": record.get("sglang_version"), "model": w.get("model"),
        "prompt": record.get("prompt"), "num_inference_steps": w.get("steps"), "width": w.get("width"),
        "height": w.get("height"), "num_frames": w.get("frames"),
        "compiled": _compiled(flags), "profile": bool(record.get("profile")),
        "warmup": bool(record.get("warmup_added")), "sync_stage_profiling": env.get("SGLANG_DIFFUSION_SYNC_STAGE_PROFILING") == "1",
        "gpus": [str(g) for g in record.get("gpus") or []], "flags": flags,
        "command": record.get("command"), "env": env, "hardware": record.get("hardware"), "workload": w,
        "status": record.get("status"), "created_at": record.get("created_at"), "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"), "warmup_excluded_s": result.get("warmup_excluded_s"),
        "peak_vram_gb": result.get("peak_vram_gb"), "log_path": result.get("log_path"),
        "error_code": (result.get("error") or {}).get("code"),
    }


def _outputs(record: dict, states: list[LogState]) -> list[str]:
    found: list[str] = []
    out_dir = record.get("output_dir") or ""
    for stem in record.get("output_stems") or []:
        found += sorted(p for p in glob.glob(os.path.join(glob.escape(out_dir), glob.escape(stem) + "*"))
                        if os.path.isfile(p) and not p.endswith((".json", ".log")))
    for st in states:
        found += [p for p in st.saved_to if os.path.isfile(p)]
    return list(dict.fromkeys(found))[:20]


def _conclude(record: dict) -> RunResult:
    data = _base(record)
    redactor = Redactor.from_env()
    warnings = [Problem.model_validate(w) for w in data["warnings"]]
    outcome = record.get("outcome")
    exit_codes = record.get("exit_codes") or []
    ran = max(1, len(exit_codes))
    warmup = bool(record.get("warmup_added", True))
    log_paths = (record.get("log_paths") or [])[:ran]
    states = [read_log(p, warmup) for p in log_paths if os.path.exists(p)]
    perf_paths = record.get("perf_paths") or []
    perfs = []
    for p in perf_paths[:ran]:
        if os.path.exists(p):
            try:
                perfs.append(integration.parse_perf_dump(p))
            except Exception as exc:  # a malformed dump is a finding, not a crash
                warnings.append(Problem(code="bad_perf_dump", message=cap_line(f"Could not parse {p}: {exc}")))
                perfs.append(None)
        else:
            perfs.append(None)
    last = states[-1] if states else LogState()
    first_perf = next((p for p in perfs if p), None)
    outputs = _outputs(record, states)

    data["log_path"] = log_paths[-1] if log_paths else data["log_path"]
    data["log_tail"] = redactor.data(capped_tail(list(last.tail)))
    data["server_args"] = redactor.data(capped_server_args(last.server_args))
    data["outputs"] = outputs
    data["perf_dump_path"] = next((p for p in perf_paths if os.path.exists(p)), None)
    if record.get("profile"):
        rdir = record.get("run_dir") or ""
        data["trace_paths"] = sorted({str(p) for pattern in ("traces/*.trace.json*", "logs/*.trace.json*")
                                      for p in Path(rdir).glob(pattern)})[:16]
    data["phase"] = "done"
    if first_perf:
        data["perf"] = {k: first_perf.get(k) for k in ("total_ms", "denoise_ms", "stages", "steps",
                                                       "memory_checkpoints")}
    vram = integration.parse_vram_log(last.vram_lines, log_paths[-1] if log_paths else None,
                                      record.get("sglang_version"), command=advice_argv(record.get("argv") or []))
    data["vram"] = vram
    peak = (vram or {}).get("peak_reserved_gb") or (first_perf or {}).get("peak_reserved_gb")
    if peak is None and last.memory_peak_mb:
        peak = round(last.memory_peak_mb / 1024.0, 3)
    data["peak_vram_gb"] = peak
    data["warmup_excluded_s"] = last.warmup_excluded_s
    if warmup and last.warmup_failed:
        data["warmup_excluded_s"] = None
        warnings.append(Problem(code="warmup_failed", message="sglang says warmup failed, so the request ran cold: "
                                "its time includes first-use cost and is not a warmed-up timing.",
                                fix="Read the log for the warmup error; rerun once it is fixed."))
    if len(states) > 1:
        data["repeats"] = _repeat_stats(states, perfs)

    status, error = _classify(record, outcome, exit_codes, last, first_perf, outputs)
    if error is not None and error.code == "bad_flag":
        error = _maybe_stale_version(record, error, last)
    if status == "succeeded" and warmup and data["warmup_excluded_s"] is None and not last.warmup_failed:
        warnings.append(Problem(code="no_warmup_line", message="The '(with warmup excluded)' line is missing."))
    data["status"] = status
    data["error"] = error
    data["progress"] = 1.0 if status == "succeeded" else data.get("progress", 0.0)
    data["warnings"] = [w.model_dump() for w in warnings][:20]
    return RunResult.model_validate(redactor.data(data))


def _classify(record: dict, outcome, exit_codes, st: LogState, perf, outputs) -> tuple[str, Problem | None]:
    code = exit_codes[-1] if exit_codes else None
    if outcome == "cancelled":
        return "cancelled", problem("cancelled", "The run was cancelled (cancel_run); its process group was stopped.")
    if outcome == "timeout":
        return "timeout", problem("timeout", f"The run passed timeout_s={record.get('timeout_s')} and was stopped.")
    if outcome == "vanished":
        return "interrupted", problem("unknown", "The run's supervisor vanished (killed, or the host restarted) "
                                      "before it recorded an outcome.")
    if outcome == "supervisor_error":
        return "failed", problem("unknown", f"The supervisor failed: {record.get('supervisor_error')}")
    found = st.error_code()
    if code not in (0, None):
        line = st.errors.get(found) if found else st.last_error_line
        return "failed", problem(found or "unknown", f"sglang exited with code {code}" + (f": {line}" if line else "."))
    if st.generation_failed:
        detail = st.errors.get(found) if found else st.generation_failed
        return "failed", problem(found or "no_perf_dump", f"sglang logged a failed generation and exited 0: {detail}")
    if st.fallback_line and not _asked_for_diffusers(record.get("argv") or []):
        return "failed", problem("diffusers_fallback", f"sglang fell back to the diffusers backend: {st.fallback_line}")
    if perf is None:
        return "failed", problem("no_perf_dump", "sglang exited 0 but wrote no perf dump.")
    if not outputs:
        return "failed", problem("no_perf_dump", "sglang exited 0 but wrote no output file.")
    return "succeeded", None


# Flags whose values are the run's own paths: advice (improved_command) is for run_generate's argv, which
# refuses them, so they are left out of the command it is built from.
_RUN_PATH_FLAGS = ("--perf-dump-path", "--output-path", "--output-file-name")


def advice_argv(argv: list[str]) -> list[str]:
    """The run's argv without the paths run_generate owns: what parse_vram_log improves."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in _RUN_PATH_FLAGS:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def _maybe_stale_version(record: dict, error: Problem, st: LogState) -> Problem:
    """sglang refused a flag run_generate added for the cached version: the version changed under the cache.

    Drop the cache (every server process sees the file go) and say so."""
    import re

    line = " ".join(filter(None, [st.errors.get("bad_flag"), st.last_error_line, error.message]))
    added = record.get("added_flags") or []
    named = [f for f in added if re.search(re.escape(f) + r"(?![\w-])", line)]
    if not named:
        return error
    home = record.get("home")
    runner.drop_version_cache(os.path.join(home, VERSION_CACHE_FILE) if home else None)
    return Problem(code=error.code, message=error.message, flag=named[0],
                   fix=f"sglang refused {named[0]}, which run_generate added for sglang {record.get('sglang_version')}: "
                       "the installed sglang version may have changed; run again (the cached version was dropped, "
                       "so the next run asks sglang for its version).")


def _asked_for_diffusers(argv: list[str]) -> bool:
    for i, a in enumerate(argv):
        if a == "--backend=diffusers" or (a == "--backend" and i + 1 < len(argv) and argv[i + 1] == "diffusers"):
            return True
    return False


def _repeat_stats(states: list[LogState], perfs: list) -> dict:
    values = []
    for st, perf in zip(states, perfs + [None] * len(states)):
        if st.warmup_excluded_s is not None:
            values.append(st.warmup_excluded_s)
        elif perf and perf.get("total_ms"):
            values.append(perf["total_ms"] / 1000.0)
    med = statistics.median(values) if values else None
    totals = [p["total_ms"] for p in perfs if p and p.get("total_ms")]
    denoise = [p["denoise_ms"] for p in perfs if p and p.get("denoise_ms")]
    return {"count": len(states), "values_s": values, "median_s": med,
            "spread_pct": round((max(values) - min(values)) / med * 100, 2) if med else None,
            "median_total_ms": statistics.median(totals) if totals else None,
            "median_denoise_ms": statistics.median(denoise) if denoise else None}
