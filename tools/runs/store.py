"""Run records and run history, safe against a killed server.

- `<state_home>/runs/<run_id>/run.json`: the record. Every write goes to a temp file and is
  `os.replace`d, under an flock on `run.lock`, so a reader never sees half a record and two
  processes never lose each other's update.
- `<state_home>/history.sqlite` (WAL): one row per run, keyed by run id, with the workload
  signature, so later tools can look up what was measured where.
- `<perf dump>.meta.json`: the same facts beside each dump, for tools given only a path.
Stdlib only: the supervisor imports this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator

# Stdlib-light on purpose (no secrets/datetime/typing): every run's supervisor imports this module.

TERMINAL = ("succeeded", "failed", "timeout", "cancelled", "interrupted")
ACTIVE = ("queued", "running")


def now_iso() -> str:
    """UTC, ISO 8601 with milliseconds, e.g. 2026-05-01T10:00:00.123+00:00 (sorts as text)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}+00:00"


def new_run_id() -> str:
    """Sortable by creation time, random enough to never collide."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + os.urandom(3).hex()


def runs_dir(home: str) -> str:
    return os.path.join(home, "runs")


def run_dir(home: str, run_id: str) -> str:
    return os.path.join(runs_dir(home), run_id)


def valid_run_id(run_id: str) -> bool:
    return bool(run_id) and len(run_id) < 80 and all(c.isalnum() or c in "-_" for c in run_id)


# -- atomic JSON files -------------------------------------------------------------------------------

def write_json_atomic(path: str, data: object) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def run_lock(rdir: str) -> Iterator[None]:
    fd = os.open(os.path.join(rdir, "run.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_record(rdir: str) -> dict | None:
    return read_json(os.path.join(rdir, "run.json"))


def update_record(rdir: str, change: Callable[[dict], dict | None] | dict) -> dict:
    """Read-modify-write run.json under the run lock; `change` is a dict to merge or a function."""
    with run_lock(rdir):
        record = read_record(rdir) or {}
        if callable(change):
            record = change(record) or record
        else:
            record.update(change)
        record["updated_at"] = now_iso()
        write_json_atomic(os.path.join(rdir, "run.json"), record)
        return record


def create_record(rdir: str, record: dict) -> None:
    os.makedirs(rdir, exist_ok=True)
    with run_lock(rdir):
        record["updated_at"] = now_iso()
        write_json_atomic(os.path.join(rdir, "run.json"), record)


# -- supervisor liveness -----------------------------------------------------------------------------

def supervisor_alive(rdir: str) -> bool:
    """The supervisor holds an flock on supervisor.lock while it lives; the kernel drops it on death."""
    path = os.path.join(rdir, "supervisor.lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


# -- history -----------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY,
  created_at TEXT, started_at TEXT, ended_at TEXT,
  status TEXT, error_code TEXT, exit_code INTEGER,
  model TEXT, gpu_type TEXT, gpu_count INTEGER, width INTEGER, height INTEGER, frames INTEGER, steps INTEGER,
  hardware TEXT, sglang_version TEXT,
  command TEXT, env_json TEXT,
  warmup_excluded_s REAL, total_ms REAL, denoise_ms REAL, peak_vram_gb REAL, repeats INTEGER,
  run_dir TEXT, log_path TEXT, perf_dump_path TEXT, outputs_json TEXT
);
CREATE INDEX IF NOT EXISTS runs_model ON runs(model);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
"""
_COLUMNS = ("run_id", "created_at", "started_at", "ended_at", "status", "error_code", "exit_code", "model",
            "gpu_type", "gpu_count", "width", "height", "frames", "steps", "hardware", "sglang_version", "command",
            "env_json", "warmup_excluded_s", "total_ms", "denoise_ms", "peak_vram_gb", "repeats", "run_dir",
            "log_path", "perf_dump_path", "outputs_json")


def history_path(home: str) -> str:
    return os.path.join(home, "history.sqlite")


@contextlib.contextmanager
def history(home: str):
    import sqlite3

    os.makedirs(home, exist_ok=True)
    db = sqlite3.connect(history_path(home), timeout=10.0)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        yield db
        db.commit()
    finally:
        db.close()


def history_row(record: dict) -> dict:
    """The history columns for a run record (already redacted)."""
    w = record.get("workload") or {}
    result = record.get("result") or {}
    perf = result.get("perf") or {}
    error = result.get("error") or {}
    return {
        "run_id": record.get("run_id"), "created_at": record.get("created_at"),
        "started_at": record.get("started_at"), "ended_at": record.get("ended_at"),
        "status": record.get("status"), "error_code": error.get("code"), "exit_code": record.get("exit_code"),
        "model": w.get("model"), "gpu_type": w.get("gpu_type"), "gpu_count": w.get("gpu_count"),
        "width": w.get("width"), "height": w.get("height"), "frames": w.get("frames"), "steps": w.get("steps"),
        "hardware": record.get("hardware"), "sglang_version": record.get("sglang_version"),
        "command": record.get("command"), "env_json": json.dumps(record.get("env") or {}, sort_keys=True),
        "warmup_excluded_s": result.get("warmup_excluded_s"), "total_ms": perf.get("total_ms"),
        "denoise_ms": perf.get("denoise_ms"), "peak_vram_gb": result.get("peak_vram_gb"),
        "repeats": record.get("repeats"), "run_dir": record.get("run_dir"), "log_path": result.get("log_path"),
        "perf_dump_path": result.get("perf_dump_path"),
        "outputs_json": json.dumps(result.get("outputs") or []),
    }


def save_history(home: str, record: dict) -> None:
    row = history_row(record)
    cols = ", ".join(_COLUMNS)
    marks = ", ".join(f":{c}" for c in _COLUMNS)
    with history(home) as db:
        db.execute(f"INSERT OR REPLACE INTO runs ({cols}) VALUES ({marks})", row)


def query_history(home: str, model: str | None = None, status: str | None = None, hardware: str | None = None,
                  limit: int = 20, statuses: tuple[str, ...] | None = None) -> tuple[list[dict], int]:
    """Newest first; returns (rows, total matching). `statuses`: any of these (with or instead of status)."""
    if not os.path.exists(history_path(home)):
        return [], 0
    where, args = [], []
    if model:
        where.append("lower(model) = lower(?)")
        args.append(model)
    if status:
        where.append("status = ?")
        args.append(status)
    if statuses:
        where.append(f"status IN ({', '.join('?' for _ in statuses)})")
        args += list(statuses)
    if hardware:
        where.append("(lower(hardware) = lower(?) OR lower(gpu_type) = lower(?))")
        args += [hardware, hardware]
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    with history(home) as db:
        db.row_factory = __import__("sqlite3").Row
        total = db.execute(f"SELECT count(*) FROM runs{clause}", args).fetchone()[0]
        rows = db.execute(f"SELECT * FROM runs{clause} ORDER BY created_at DESC, run_id DESC LIMIT ?",
                          [*args, limit]).fetchall()
    return [dict(r) for r in rows], total


def active_run_ids(home: str) -> list[str]:
    """Runs the history still shows as queued or running (candidates for reconciliation)."""
    if not os.path.exists(history_path(home)):
        return []
    with history(home) as db:
        return [r[0] for r in db.execute("SELECT run_id FROM runs WHERE status IN ('queued', 'running')")]


def write_sidecar(perf_dump_path: str, facts: dict) -> str:
    path = perf_dump_path + ".meta.json"
    write_json_atomic(path, facts)
    return path
