"""The detached supervisor of one run: `python -m sglang_diffusion_mcp.tools.runs.supervise <run_dir>`.

It reads its spec (argv per repeat, paths, timeout, GPUs) from stdin, so the real argv never touches
disk; holds `supervisor.lock` while alive (how others tell a live run from a vanished one); waits for
its GPU locks (status `queued`, with what it waits for); runs sglang once per repeat in its own
process group with its output on a pipe that it copies into the log redacted (log_pump: the log never
holds a secret value, whoever reads it and however the run ends); enforces timeout_s; turns SIGTERM
(cancel_run) into a group stop; reaps everything; redacts the perf dumps sglang wrote; records the
outcome atomically; then closes the run (parse, history) unless a reader already did.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import sys
import time

from . import runner, store
from .gpu_lock import GpuLocks
from .log_pump import LogPump, make_pipe
from .redact import Redactor, StreamRedactor, secret_values

CANCEL_FILE_CHECK_S = 1.0  # cancel_run also signals us; the file covers a signal sent before we listened
QUEUE_POLL_S = 0.25
FINALIZE_DELAY_S = 2.0  # a waiting server usually closes the run first; we make sure it is closed
DRAIN_AFTER_EXIT_S = 0.5  # after sglang exits, how long its children may keep writing before they are stopped


class Supervisor:
    def __init__(self, rdir: str, spec: dict):
        self.rdir = rdir
        self.spec = spec
        self.run_id = spec["run_id"]
        self.stop_reason: str | None = None  # "cancelled" | "timeout"
        self.proc = None
        # our environment is the run's: it holds the secret values the log must never contain
        self.stream_redactor = StreamRedactor(secret_values())

    def _on_signal(self, signum, frame) -> None:
        if self.stop_reason is None:
            self.stop_reason = "cancelled"

    def _cancel_requested(self) -> bool:
        if self.stop_reason is None and os.path.exists(os.path.join(self.rdir, "cancel")):
            self.stop_reason = "cancelled"
        return self.stop_reason == "cancelled"

    def _update(self, **fields) -> None:
        store.update_record(self.rdir, fields)

    def wait_for_gpus(self) -> GpuLocks | None:
        locks = GpuLocks(self.spec["locks_dir"], self.spec.get("lock_gpus") or [], self.run_id,
                         shared=bool(self.spec.get("allow_shared")))
        if not locks.gpus:
            return locks
        if self.spec.get("held_lock_fds"):  # run_generate took them and handed us the descriptors
            locks.fds = [int(fd) for fd in self.spec["held_lock_fds"]]
            return locks
        said = None
        while True:
            blocked = locks.try_acquire()
            if not blocked:
                return locks
            waiting = "waiting for " + ", ".join(blocked)
            if waiting != said:
                self._update(status="queued", waiting_for=waiting)
                said = waiting
            if self._cancel_requested():
                return None
            time.sleep(QUEUE_POLL_S)

    def run_one(self, index: int, argv: list[str], deadline: float | None, lock_fds: tuple[int, ...]) -> int | None:
        read_fd, write_fd = make_pipe()
        try:
            self.proc = proc = runner.launch_sglang(argv, dict(os.environ), write_fd, cwd=self.rdir, pass_fds=lock_fds)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # sglang (and its children) hold the only write ends: EOF means all are gone
        pump = LogPump(read_fd, self.spec["log_paths"][index], self.stream_redactor)
        if index == 0:
            cpu = os.times()
            self.cpu_at_launch = cpu.user + cpu.system
        self._update(status="running", waiting_for=None, repeat=index + 1, pid=proc.pid, pgid=proc.pid,
                     pid_start=runner.start_ticks(proc.pid), started_at=self.started_at)
        pidfd = runner.open_pidfd(proc.pid)
        grace = float(self.spec.get("grace_s", runner.GRACE_S))
        try:
            while True:
                now = time.monotonic()
                wait = CANCEL_FILE_CHECK_S if deadline is None else min(CANCEL_FILE_CHECK_S, deadline - now)
                if pidfd is None:
                    wait = min(wait, 0.05)
                read_pipe = pump.wants_read(now)
                if pump.fd is not None and not read_pipe:  # let the pipe fill; still wake for exit and signals
                    wait = min(wait, pump.readable_at - now)
                fds = [fd for fd in (pidfd, self.wakeup_fd, pump.fd if read_pipe else None) if fd is not None]
                try:
                    ready, _, _ = select.select(fds, [], [], max(0.0, wait))
                except InterruptedError:
                    ready = []
                if self.wakeup_fd in ready:
                    try:
                        os.read(self.wakeup_fd, 512)
                    except OSError:
                        pass
                if read_pipe and pump.fd in ready:
                    pump.read_batch()
                code = proc.poll()
                if code is not None:
                    break
                if deadline is not None and time.monotonic() >= deadline and self.stop_reason is None:
                    self.stop_reason = "timeout"
                if self._cancel_requested() or self.stop_reason:
                    runner.stop_group(proc.pid, proc, grace_s=grace)
                    return proc.returncode
            # sglang exited: what its children still write belongs in the log, but a child that keeps the
            # pipe open must not keep us here; they must not outlive it anyway, even on success
            pump.drain(DRAIN_AFTER_EXIT_S)
            runner.stop_group(proc.pid, None, grace_s=1.0)
            return code
        finally:
            if pidfd is not None:
                os.close(pidfd)
            pump.finish()  # after the group is stopped: takes what is buffered, never waits for EOF

    def main(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        r, w = os.pipe()  # a signal wakes the wait at once
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)
        self.wakeup_fd = r
        runner.become_subreaper()
        self._update(supervisor_pid=os.getpid(), supervisor_start=runner.start_ticks(os.getpid()))
        self.started_at = None
        self.cpu_at_launch = 0.0
        exit_codes: list[int | None] = []
        locks = self.wait_for_gpus()
        try:
            if locks is not None:
                self.started_at = store.now_iso()
                timeout_s = self.spec.get("timeout_s")
                deadline = time.monotonic() + timeout_s if timeout_s else None
                for i, argv in enumerate(self.spec["argv_runs"]):
                    code = self.run_one(i, argv, deadline, tuple(locks.fds))
                    exit_codes.append(code)
                    if self.stop_reason or code != 0:
                        break
        finally:
            runner.sweep_marked(self.run_id)
            runner.reap_any()
            if locks is not None:
                locks.release()
        redactor = Redactor.from_env()
        for path in self.spec["perf_paths"]:  # the logs were written redacted; sglang writes the dumps itself
            redactor.file(path)
        outcome = self.stop_reason or "exited"
        cpu = os.times()
        self._update(outcome=outcome, exit_codes=exit_codes, supervisor_cpu_s=round(cpu.user + cpu.system, 4),
                     supervisor_cpu_while_running_s=round(cpu.user + cpu.system - self.cpu_at_launch, 4),
                     exit_code=exit_codes[-1] if exit_codes else None, ended_at=store.now_iso(),
                     started_at=self.started_at, waiting_for=None)
        return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rdir = argv[0]
    if len(argv) > 1:  # the launcher's locked descriptor: held until we exit, our liveness as others see it
        lock_fd = int(argv[1])
    else:
        lock_fd = os.open(os.path.join(rdir, "supervisor.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
    os.set_inheritable(lock_fd, False)  # sglang must not keep the run looking alive
    spec = json.loads(sys.stdin.buffer.read().decode() or "{}")
    sys.stdin.close()
    sup = Supervisor(rdir, spec)
    try:
        sup.main()
    except Exception as exc:  # record it: a reader must never wait on a run nobody supervises
        store.update_record(rdir, {"outcome": "supervisor_error",
                                   "supervisor_error": Redactor.from_env().text(repr(exc))[:500],
                                   "ended_at": store.now_iso()})
        raise
    finally:
        if sup.proc is not None and sup.proc.poll() is None:
            runner.stop_group(sup.proc.pid, sup.proc)
    # Close the run ourselves so history is complete even if no server ever polls again. Later, and only
    # if still needed: a waiting server usually does it, and importing the parsers here would compete with it.
    deadline = time.monotonic() + FINALIZE_DELAY_S
    while time.monotonic() < deadline:  # exit as soon as a reader has closed it: no lingering supervisor
        if (store.read_record(rdir) or {}).get("finalized"):
            return 0
        time.sleep(0.1)
    try:
        if (store.read_record(rdir) or {}).get("finalized"):
            return 0
        import importlib

        importlib.import_module("sglang_diffusion_mcp.tools.runs.results").finalize(rdir)
    except Exception as exc:  # a reader will finalize instead
        print(f"finalize failed: {exc!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
