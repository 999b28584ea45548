"""The one place that runs external commands (nvidia-smi, amd-smi), always under a timeout.

Tests replace `run` and `which` to fake a host.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None  # why there is no usable output: not found, timed out, failed to start

    @property
    def ok(self) -> bool:
        return self.error is None and self.returncode == 0


def which(name: str) -> str | None:
    return shutil.which(name)


def run(argv: list[str], timeout_s: float) -> CommandResult:
    """Run argv (no shell); a hung command is killed with its process group after timeout_s."""
    if which(argv[0]) is None:
        return CommandResult(argv, error=f"{argv[0]} is not on PATH")
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", start_new_session=True)
    except OSError as exc:
        return CommandResult(argv, error=f"could not start {argv[0]}: {exc}")
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        out, err = proc.communicate()
        return CommandResult(argv, proc.returncode, out, err, error=f"{' '.join(argv)} did not finish in {timeout_s:g} s")
    result = CommandResult(argv, proc.returncode, out, err)
    if proc.returncode != 0:
        detail = (err or out).strip().splitlines()
        result.error = f"{' '.join(argv)} exited with {proc.returncode}" + (f": {detail[-1][:200]}" if detail else "")
    return result
