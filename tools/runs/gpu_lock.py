"""Per-GPU lock files, so two runs never share a GPU, across every server process on the host.

`<state_home>/locks/gpu-<key>.lock`, held with fcntl.flock by the run's supervisor for the run's
lifetime (and inherited by sglang, so a GPU stays locked while sglang lives). run_generate tries to take
them itself before it starts the supervisor and hands the locked descriptors over, so a run started right
after another sees its GPUs taken (automatic GPU choice skips them) even before that supervisor runs. A run that allows
sharing takes a shared lock: it coexists with other sharing runs, never with an exclusive one.
The kernel drops a flock when its holders die, so a crashed run never leaves a GPU locked.
Stdlib only: the supervisor imports this module.
"""

from __future__ import annotations

from collections.abc import Iterator

import fcntl
import os


def lock_key(gpu: str | int) -> str:
    """A file-name-safe key for a GPU index or UUID (as CUDA_VISIBLE_DEVICES spells it)."""
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in str(gpu).strip()) or "unknown"


def lock_path(locks_dir: str, gpu: str | int) -> str:
    return os.path.join(locks_dir, f"gpu-{lock_key(gpu)}.lock")


class GpuLocks:
    """Tries to take every GPU's lock at once; all or none."""

    def __init__(self, locks_dir: str, gpus: list[str | int], run_id: str, shared: bool = False):
        self.locks_dir = locks_dir
        self.gpus = sorted({str(g) for g in gpus})  # one order for everyone: no lock-order deadlock
        self.run_id = run_id
        self.shared = shared
        self.fds: list[int] = []

    def try_acquire(self) -> list[str]:
        """Take all locks or none. Returns what blocks us: [] when all are held, else 'GPU n (run X)'."""
        os.makedirs(self.locks_dir, exist_ok=True)
        mode = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        blocked: list[str] = []
        for gpu in self.gpus:
            path = lock_path(self.locks_dir, gpu)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, mode)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                blocked.append(f"GPU {gpu}" + (f" (in use by run {holder})" if holder else " (in use by another run)"))
                continue
            self.fds.append(fd)
            if not self.shared:
                os.ftruncate(fd, 0)
                os.pwrite(fd, self.run_id.encode(), 0)
        if blocked:
            self.release()
        return blocked

    def release(self) -> None:
        for fd in self.fds:
            try:
                if not self.shared:
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError:
                pass
            os.close(fd)
        self.fds = []


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 64, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def _held(locks_dir: str, probe: int) -> Iterator[tuple[str, int]]:
    """(GPU key, open fd) of each GPU lock file that `probe` (LOCK_EX: any holder, LOCK_SH: exclusive ones) finds held."""
    try:
        names = os.listdir(locks_dir)
    except OSError:
        return
    for name in names:
        if not (name.startswith("gpu-") and name.endswith(".lock")):
            continue
        try:
            fd = os.open(os.path.join(locks_dir, name), os.O_RDONLY)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, probe | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError:
                yield name[4:-5], fd
        finally:
            os.close(fd)


def busy(locks_dir: str) -> set[str]:
    """Keys (lock_key) of the GPUs some run holds now, exclusively or shared: not free for a new run."""
    return {key for key, _ in _held(locks_dir, fcntl.LOCK_EX)}


def holders(locks_dir: str) -> dict[str, str]:
    """GPU key -> run id holding it exclusively right now (for list/diagnostics)."""
    return {key: _read_holder(fd) or "?" for key, fd in _held(locks_dir, fcntl.LOCK_SH)}
