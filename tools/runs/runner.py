"""The one module that starts, signals and reaps processes. Never a shell: argv lists only.

- `spawn_supervisor` starts `python -m ...runs.supervise <run_dir>` in its own session, so the run
  outlives the server that started it (an IDE restarting its MCP server, a CLI call that returns).
- `launch_sglang` starts sglang in its own process group, stdout and stderr on the supervisor's pipe
  (log_pump copies it into the log, redacted).
- `stop_group` is cancel and timeout: SIGTERM to the group, SIGKILL after a grace period, reap.
- `sweep_marked` kills stragglers that left the group (setsid) but carry the run's env marker.
- `sglang_version` reads the installed version through the executable, once, with a timeout.
Stdlib only: the supervisor imports this module.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

RUN_MARKER_ENV = "SGLANG_DIFFUSION_MCP_RUN_ID"
SUPERVISOR_MODULE = "sglang_diffusion_mcp.tools.runs.supervise"
# Starts the supervisor with only this folder's stdlib-only modules, as a private package: importing
# sglang_diffusion_mcp itself (importlib.metadata) would add ~40 ms to every run. Same as `python -m
# sglang_diffusion_mcp.tools.runs.supervise <run_dir>`, which also works.
_BOOT = (
    "import sys, types\n"
    "pkg = types.ModuleType('_sglang_diffusion_mcp_runs')\n"
    "pkg.__path__ = [sys.argv[1]]\n"
    "sys.modules[pkg.__name__] = pkg\n"
    "from _sglang_diffusion_mcp_runs.supervise import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)
GRACE_S = 5.0
_children: list[subprocess.Popen] = []  # supervisors this process started, reaped when polled


# -- starting ----------------------------------------------------------------------------------------

def spawn_supervisor(run_dir: str, spec: dict, env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> int:
    """Start the detached supervisor; the spec (real argv, may hold secrets) goes through stdin, not disk.

    We take supervisor.lock before the supervisor exists and hand it the locked descriptor, so there is
    no moment where a live run looks vanished to another process. pass_fds (GPU locks the caller holds)
    go to the supervisor under the same numbers; the caller closes its copies.
    """
    reap_children()
    lock_fd = os.open(os.path.join(run_dir, "supervisor.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        with open(os.path.join(run_dir, "supervisor.log"), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, os.path.dirname(os.path.abspath(__file__)), run_dir, str(lock_fd)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=run_dir, start_new_session=True, close_fds=True, pass_fds=(lock_fd, *pass_fds),
            )
    finally:
        os.close(lock_fd)  # the supervisor's copy keeps the lock
    try:
        proc.stdin.write(json.dumps(spec).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    _children.append(proc)
    return proc.pid


def reap_children() -> None:
    """Collect exited supervisors so a long-lived server keeps no zombies."""
    _children[:] = [p for p in _children if p.poll() is None]


def launch_sglang(argv: list[str], env: dict[str, str], output_fd: int, cwd: str,
                  pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start sglang in a new process group, stdout and stderr both on output_fd (the supervisor's pipe,
    so tqdm's \\r stays inline with the log lines)."""
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output_fd, stderr=output_fd, env=env, cwd=cwd,
                            start_new_session=True, close_fds=True, pass_fds=pass_fds)


def open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when pid exits (Linux 5.3+), for select(); None where unavailable."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def become_subreaper() -> bool:
    """Orphaned grandchildren re-parent to us (Linux), so we can reap them and none linger as zombies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap_any() -> None:
    """Reap every exited child (including adopted orphans)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# -- stopping ----------------------------------------------------------------------------------------

def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(not _is_zombie(pid) for pid in _group_members(pgid)) if sys.platform.startswith("linux") else True


def _group_members(pgid: int) -> list[int]:
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat and stat[2] == pgid:
                members.append(int(name))
    return members


def _stat(pid: int) -> tuple[str, str, int, int] | None:
    """(state, ppid, pgrp, starttime) from /proc/<pid>/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    return fields[0], fields[1], int(fields[2]), int(fields[19])


def _is_zombie(pid: int) -> bool:
    stat = _stat(pid)
    return stat is None or stat[0] in ("Z", "X")


def pid_running(pid: int | None, start_ticks: int | None = None) -> bool:
    """Whether pid is a live (non-zombie) process, and the same one when its start time is given."""
    if not pid:
        return False
    if sys.platform.startswith("linux"):
        stat = _stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return start_ticks is None or stat[3] == start_ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_ticks(pid: int) -> int | None:
    stat = _stat(pid)
    return stat[3] if stat else None


def stop_group(pgid: int, proc: subprocess.Popen | None = None, grace_s: float = GRACE_S) -> None:
    """SIGTERM the whole group, SIGKILL what is left after grace_s, then reap."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()
        reap_any()
        if not group_alive(pgid):
            break
        time.sleep(0.02)
    else:
        _signal_group(pgid, signal.SIGKILL)
    if proc is not None:
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    for _ in range(100):
        reap_any()
        if not group_alive(pgid):
            break
        _signal_group(pgid, signal.SIGKILL)
        time.sleep(0.01)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def sweep_marked(run_id: str) -> list[int]:
    """Kill processes that escaped the group (their own setsid) but carry this run's env marker."""
    if not sys.platform.startswith("linux"):
        return []
    needle = f"{RUN_MARKER_ENV}={run_id}".encode()
    me = os.getpid()
    killed = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            try:
                os.kill(int(name), signal.SIGKILL)
                killed.append(int(name))
            except OSError:
                pass
    if killed:
        time.sleep(0.05)
        reap_any()
    return killed


# -- the sglang executable -------------------------------------------------------------------------

def resolve_executable(cmd: list[str]) -> str | None:
    """The path of the command's program, or None if it cannot be found."""
    if not cmd:
        return None
    prog = cmd[0]
    if os.sep in prog:
        return prog if os.access(prog, os.X_OK) and os.path.isfile(prog) else None
    import shutil  # not at import time: the supervisor never needs it

    return shutil.which(prog)


_VERSION_LINE = r"sglang version:\s*([0-9][0-9A-Za-z.+-]*)"
VERSION_TTL_S = 3600.0
# key -> (version, epoch when probed, signature of the disk cache when we last agreed with it)
_version_cache: dict[tuple, tuple[str | None, float, tuple | None]] = {}


def _stamp(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def version_cache_key(cmd: list[str]) -> tuple | None:
    """The command, its program and the mtimes of the program and of every file the command names.

    `python3 /path/sglang_script` or a wrapper script change when sglang is reinstalled where the
    interpreter does not; `docker exec ...` names no file at all, hence the TTL as well."""
    exe = resolve_executable(cmd)
    if exe is None:
        return None
    files = [(a, _stamp(a)) for a in cmd[1:] if os.sep in a and os.path.isfile(a)]
    return (tuple(cmd), exe, _stamp(exe), tuple(files))


def _file_signature(path: str | None) -> tuple | None:
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def drop_version_cache(cache_file: str | None) -> None:
    """Forget every cached version, here and (through the disk file) in every other server process."""
    _version_cache.clear()
    if cache_file:
        try:
            os.remove(cache_file)
        except OSError:
            pass


def sglang_version(cmd: list[str], cache_file: str | None = None, timeout_s: float = 60.0,
                   ttl_s: float = VERSION_TTL_S) -> str | None:
    """`<sglang> version` -> '0.5.10.post1'; cached in memory and on disk for ttl_s, per version_cache_key.

    The memory cache follows the disk file: when another process drops it (a run failed on a flag we
    added, see results), every process probes again."""
    key = version_cache_key(cmd)
    if key is None:
        return None
    now = time.time()
    signature = _file_signature(cache_file)
    hit = _version_cache.get(key)
    if hit and now - hit[1] < ttl_s and (cache_file is None or hit[2] == signature):
        return hit[0]
    disk_key = json.dumps(key)
    disk: dict = {}
    if cache_file:
        try:
            with open(cache_file, encoding="utf-8") as f:
                disk = json.load(f)
        except (OSError, ValueError):
            disk = {}
        disk = disk if isinstance(disk, dict) else {}
        entry = disk.get(disk_key)
        if isinstance(entry, dict) and isinstance(entry.get("at"), (int, float)) and now - entry["at"] < ttl_s:
            _version_cache[key] = (entry.get("version"), float(entry["at"]), signature)
            return entry.get("version")
    try:
        out = subprocess.run([*cmd, "version"], stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=timeout_s, start_new_session=True)
        text = (out.stdout + out.stderr).decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return None  # not cached: the next call may succeed
    import re

    m = re.search(_VERSION_LINE, text)
    version = m.group(1) if m else None
    if cache_file and version:
        disk = {k: v for k, v in disk.items() if isinstance(v, dict) and now - v.get("at", 0) < ttl_s}
        disk[disk_key] = {"version": version, "at": now}
        tmp = f"{cache_file}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(cache_file), exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(disk, f)
            os.replace(tmp, cache_file)
        except OSError:
            pass
        signature = _file_signature(cache_file)
    if version:  # an unreadable answer is asked again next time (sglang may have just been installed)
        _version_cache[key] = (version, now, signature)
    return version
