"""The one module that starts, signals and reaps processes. Never a shell: argv lists only.

- `spawn_supervisor` starts `python -m ...runs.supervise <run_dir>` in its own session, so the run
  outlives the server that started it (an IDE restarting its MCP server, a CLI call that returns).
- `launch_sglang` starts sglang in its own process group, stdout and stderr appended to one log.
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

def spawn_supervisor(run_dir: str, spec: dict, env: dict[str, str]) -> int:
    """Start the detached supervisor; the spec (real argv, may hold secrets) goes through stdin, not disk.

    We take supervisor.lock before the supervisor exists and hand it the locked descriptor, so there is
    no moment where a live run looks vanished to another process.
    """
    reap_children()
    lock_fd = os.open(os.path.join(run_dir, "supervisor.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        with open(os.path.join(run_dir, "supervisor.log"), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, os.path.dirname(os.path.abspath(__file__)), run_dir, str(lock_fd)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=run_dir, start_new_session=True, close_fds=True, pass_fds=(lock_fd,),
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


def launch_sglang(argv: list[str], env: dict[str, str], log_path: str, cwd: str,
                  pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start sglang in a new process group; both streams append to one log (tqdm's \\r stays inline)."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=env, cwd=cwd,
                                start_new_session=True, close_fds=True, pass_fds=pass_fds)
    finally:
        os.close(fd)


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


def wait_child(proc: subprocess.Popen, timeout: float, wakeup_fd: int | None = None) -> int | None:
    """Block until the child exits, a signal arrives (wakeup_fd) or timeout: no polling loop, ~0 CPU.

    Returns the exit code, or None if it is still running.
    """
    if hasattr(os, "pidfd_open"):
        import select

        try:
            pidfd = os.pidfd_open(proc.pid)
        except OSError:
            pidfd = None
        if pidfd is not None:
            try:
                fds = [pidfd] + ([wakeup_fd] if wakeup_fd is not None else [])
                ready, _, _ = select.select(fds, [], [], max(0.0, timeout))
                if wakeup_fd is not None and wakeup_fd in ready:
                    try:
                        os.read(wakeup_fd, 512)
                    except OSError:
                        pass
            except InterruptedError:
                pass
            finally:
                os.close(pidfd)
            return proc.poll()
    try:
        return proc.wait(timeout=min(timeout, 0.05))
    except subprocess.TimeoutExpired:
        return None


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
_version_cache: dict[tuple, str | None] = {}


def sglang_version(cmd: list[str], cache_file: str | None = None, timeout_s: float = 60.0) -> str | None:
    """`<sglang> version` -> '0.5.10.post1'; cached per command and executable mtime, in memory and on disk."""
    exe = resolve_executable(cmd)
    if exe is None:
        return None
    try:
        stamp = os.stat(exe).st_mtime_ns
    except OSError:
        stamp = 0
    key = (tuple(cmd), exe, stamp)
    if key in _version_cache:
        return _version_cache[key]
    disk_key = json.dumps([list(cmd), exe, stamp])
    disk: dict = {}
    if cache_file:
        try:
            with open(cache_file, encoding="utf-8") as f:
                disk = json.load(f)
        except (OSError, ValueError):
            disk = {}
        if isinstance(disk, dict) and disk_key in disk:
            _version_cache[key] = disk[disk_key]
            return disk[disk_key]
    try:
        out = subprocess.run([*cmd, "version"], stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=timeout_s, start_new_session=True)
        text = (out.stdout + out.stderr).decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return None  # not cached: the next call may succeed
    import re

    m = re.search(_VERSION_LINE, text)
    version = m.group(1) if m else None
    _version_cache[key] = version
    if cache_file and version:
        disk = disk if isinstance(disk, dict) else {}
        disk[disk_key] = version
        tmp = f"{cache_file}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(cache_file), exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(disk, f)
            os.replace(tmp, cache_file)
        except OSError:
            pass
    return version
