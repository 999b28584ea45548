"""sglang's stdout and stderr reach the run's log only through here, redacted by the supervisor.

The supervisor is the one process that knows the run's secret values (they are in its environment), so it
writes the log already redacted: no reader, in any process and with any environment, ever sees a secret in
the file, not even while the run goes on or after the supervisor is killed. sglang writes to a pipe; the
supervisor copies what arrives into the log through a StreamRedactor.

Cost: a 10,000 lines/s log arrives as 10,000 small writes. Reading each at once would be 10,000 wake-ups a
second, so the pipe is read at most once per BATCH_S (`readable_at`); meanwhile it fills (a 1 MiB pipe holds
~1 s of such a log) and the next read copies it all in one read and one write. A quiet log is read as soon as
a line comes, and the supervisor never stops watching sglang's exit and signals while it waits.
Stdlib only: the supervisor imports this module.
"""

from __future__ import annotations

import fcntl
import os
import select
import time

from .redact import StreamRedactor

BATCH_S = 0.05
READ_SIZE = 1 << 20
PIPE_SIZE = 1 << 20  # so a writer never blocks on us between batches (Linux default is 64 KiB)
FINAL_DRAIN_MAX = 16 << 20  # what a child that keeps writing after the kill may still add: bounded
_F_SETPIPE_SZ = 1031


def make_pipe() -> tuple[int, int]:
    """(read end, write end); the write end is for sglang, the read end stays with the supervisor."""
    r, w = os.pipe()  # both non-inheritable: only the dup2'd stdout/stderr reach sglang
    try:
        fcntl.fcntl(w, _F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # a smaller pipe only means more wake-ups
    return r, w


class LogPump:
    """Copies the pipe into the log file, redacted. `fd` is None once the pipe is at EOF or closed."""

    def __init__(self, read_fd: int, log_path: str, redactor: StreamRedactor):
        self.fd: int | None = read_fd
        self.redactor = redactor
        self.out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.bytes = 0
        self.readable_at = 0.0  # monotonic time before which we leave the pipe to fill

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.out, view):]
            except InterruptedError:
                continue
            except OSError:
                return  # a full disk must not stop the run: the run's own error will say why

    def read(self) -> int:
        """One read of what is there (call when select says readable); returns bytes read, 0 at EOF."""
        if self.fd is None:
            return 0
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return -1
        except InterruptedError:
            return -1
        if not data:
            self._close_pipe()
            return 0
        self.bytes += len(data)
        self._write(self.redactor.feed(data))
        return len(data)

    def wants_read(self, now: float) -> bool:
        return self.fd is not None and now >= self.readable_at

    def read_batch(self) -> int:
        """read(), then leave the pipe alone for BATCH_S unless that read filled a whole buffer."""
        got = self.read()
        if 0 < got < READ_SIZE:
            self.readable_at = time.monotonic() + BATCH_S
        return got

    def drain(self, timeout_s: float) -> bool:
        """Read until EOF (every writer closed the pipe) or timeout_s; returns whether EOF was reached."""
        deadline = time.monotonic() + timeout_s
        while self.fd is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                ready, _, _ = select.select([self.fd], [], [], left)
            except InterruptedError:
                continue
            if ready:
                self.read()  # writers are exiting: what is left is finite (or cut off by timeout_s)
        return True

    def finish(self) -> None:
        """Take what is still buffered in the pipe without waiting for anyone, then close everything.

        Called after sglang's group is stopped: a child that left the group may hold the pipe open
        forever, so we never wait for EOF here."""
        if self.fd is not None:
            os.set_blocking(self.fd, False)
            taken = 0
            while self.fd is not None and taken < FINAL_DRAIN_MAX:
                got = self.read()
                if got <= 0:
                    break
                taken += got
            self._close_pipe()
        self._write(self.redactor.finish())
        try:
            os.close(self.out)
        except OSError:
            pass
        self.out = -1

    def _close_pipe(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None
