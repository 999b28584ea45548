"""Follow an `sglang generate` log as it grows: phase, progress, the lines that matter, the error class.

The log is sglang's stdout and stderr in one file. sglang logs `[MM-DD HH:MM:SS] message` lines to stdout
(logging_utils.configure_logger); tqdm redraws its bar on stderr with `\\r`. Exact lines, from the wheels:

- `server_args: {json}`                               runtime/server_args.py (__post_init__), all releases
- `[<Stage>] started...` / `[<Stage>] finished in X seconds`   utils/perf_logger.py StageProfiler; not for warmup
- `Processing warmup req...`, `Warmup req processed in X seconds`, `Warmup req processing failed`
                                                      managers/scheduler.py (0.5.9 .. 0.5.21)
- `Warmup requests: n/N ...` tqdm, `warmup req WxH ... processing failed: ...`   server_warmup.py (0.5.22+)
- `Warmed-up request processed in X seconds (with warmup excluded)`  entrypoints/diffusion_generator.py
- `Warmup failed, so this request ran cold: X seconds ...`          diffusion_generator.py (0.5.22+)
- `Memory usage - Max peak: X MB, Avg peak: Y MB`     diffusion_generator.py _log_summary
- `Peak GPU memory: X GB, Peak allocated: ...`        managers/gpu_worker.py, info <= 0.5.9, debug from 0.5.10
- `GPU memory: peak=X GB, allocated=...`              managers/gpu_worker.py, later releases (debug)
- `Generation failed...`                              diffusion_generator.py; sglang still exits 0
- `Falling back to diffusers backend`                 registry.py
- `Metrics dumped to: PATH`, `Output saved to PATH`   utils/perf_logger.py, entrypoints/utils.py

Cost: plain keyword searches over each chunk decide which few lines are worth a closer look.
Stdlib only: the supervisor imports this module.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections import deque

TAIL_LINES = 40
LINE_CHARS = 400  # one line as a result carries it (a tail line, an error message); the log keeps it whole
ELLIPSIS = " …[cut]"
_PARTIAL_MAX = 256 * 1024  # a line without end (a 2 MB line arriving in pieces) is kept as head + tail


def cap_line(line: str | None, limit: int = LINE_CHARS) -> str | None:
    """At most `limit` characters, with a marker where it was cut."""
    if line is None or len(line) <= limit:
        return line
    return line[:limit - len(ELLIPSIS)] + ELLIPSIS
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A line is looked at closely only if it contains one of these (plain substrings: found with str.find).
# Progress needs only these; a live follower scans for nothing else (fewer passes over a fast log).
_PROGRESS_KEYWORDS = ("server_args: ", "] started", "] finished in", "%|", "armup", "Running pipeline stages",
                      "Output saved to", "Metrics dumped to")
# The closing read also looks for the lines that explain a result. Short on purpose: "ailed" covers every
# "...failed", "emory" the OOMs and the memory lines, "rror" most errors.
_KEYWORDS = (*_PROGRESS_KEYWORDS, "emory", "ailed", "Falling back to diffusers", "rror", "ERROR", "NCCL", "nccl",
             "CUDA", "No space left", "gated", "ot found", "ot Found", "Could not find model")
_TQDM = re.compile(r"(\d+)%\|[^|]*\|\s*(\d+)/(\d+)")
_STAGE_START = re.compile(r"\[([A-Za-z0-9_]+)\] started\.\.\.")
_STAGE_END = re.compile(r"\[([A-Za-z0-9_]+)\] finished in ([0-9.]+) seconds")
_STAGES_LIST = re.compile(r"Running pipeline stages: \[(.*)\]")
_WARMUP_EXCLUDED = re.compile(r"processed in ([0-9.]+) seconds \(with warmup excluded\)")
_WARMUP_COLD = re.compile(r"Warmup failed, so this request ran cold: ([0-9.]+) seconds")
_WARMUP_FAILED = re.compile(r"[Ww]armup req.*processing failed")
_WARMUP_START = re.compile(r"Processing warmup req|Warmup requests:|warmup req \d")
_WARMUP_DONE = re.compile(r"Warmup req.* processed in|fired up and ready to roll")
_MEM_USAGE = re.compile(r"Memory usage - Max peak: ([0-9.]+) MB")
_VRAM_LINE = re.compile(r"Peak GPU memory: |GPU memory: peak=")
_DUMPED = re.compile(r"Metrics dumped to: (.+?)\s*$")
_SAVED = re.compile(r"Output saved to (.+?)\s*$")

# Error classes, most specific first: a gated repo also raises RepositoryNotFoundError, an OOM mentions CUDA.
ERROR_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("oom", re.compile(r"CUDA out of memory|OutOfMemoryError|out of memory|CUBLAS_STATUS_ALLOC_FAILED")),
    ("disk_full", re.compile(r"No space left on device|\[Errno 28\]")),
    ("gated_model", re.compile(r"GatedRepoError|Cannot access gated repo|is restricted\. You must have access")),
    ("model_not_found", re.compile(
        r"RepositoryNotFoundError|Repository Not Found|Model or revision not found|Could not find model at|"
        r"is not a local folder and is not a valid model identifier")),
    ("bad_flag", re.compile(
        r"error: unrecognized arguments|error: argument --|error: ambiguous option|invalid choice:|"
        r"the following arguments are required")),
    ("nccl", re.compile(r"NCCL error|ncclInternalError|ncclSystemError|ncclUnhandledCudaError|ncclInvalidUsage|"
                        r"ProcessGroupNCCL.*(?:[Ee]rror|[Tt]imeout)")),
    ("cuda", re.compile(r"CUDA error|CUDA driver error|cudaError|CUDA_ERROR|no CUDA GPUs are available|"
                        r"device-side assert")),
)
_FAILED_MARK = re.compile(r"Generation failed|Failed to generate output|Traceback \(most recent call last\)")
_FALLBACK = re.compile(r"Falling back to diffusers backend")
_ERROR_HINT = re.compile(r"[Ee]rror|out of memory|OutOfMemory|NCCL|nccl|CUDA|No space left|Errno 28|gated|"
                         r"[Nn]ot [Ff]ound|Could not find model")

# Progress share of each phase within one repeat.
_LOAD_END, _WARMUP_END, _DENOISE_START, _DENOISE_END = 0.2, 0.35, 0.4, 0.95


class LogState:
    """What the log said so far. Feed it text in any chunks; it keeps a partial last line."""

    def __init__(self, warmup_expected: bool = True, live: bool = False):
        self.warmup_expected = warmup_expected
        self._keywords = _PROGRESS_KEYWORDS if live else _KEYWORDS
        self.phase = "starting"
        self.stage: str | None = None
        self.stages_planned: list[str] = []
        self.stages_done: dict[str, float] = {}
        self.step = 0
        self.steps_total = 0
        self.in_warmup = False
        self.warmup_done = False
        self.warmup_failed = False
        self.warmup_excluded_s: float | None = None
        self.cold_s: float | None = None
        self.server_args: dict | str | None = None
        self.memory_peak_mb: float | None = None
        self.vram_lines: list[str] = []
        self.dumped_to: str | None = None
        self.saved_to: list[str] = []
        self.generation_failed: str | None = None
        self.fallback_line: str | None = None
        self.errors: dict[str, str] = {}
        self.last_error_line: str | None = None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.lines = 0
        self._partial = ""

    # -- feeding -------------------------------------------------------------------------------------
    def feed(self, text: str) -> None:
        """Take any chunk of log text. Whole lines are scanned per chunk: str.find per keyword runs in C,
        so only the few lines holding a keyword cost Python work (a 10,000 lines/s log stays cheap)."""
        if not text:
            return
        text = self._partial + text
        cut = text.rfind("\n")
        if cut < 0:
            if len(text) > _PARTIAL_MAX and "\r" not in text[-_PARTIAL_MAX // 2:]:
                text = text[:_PARTIAL_MAX // 2] + text[-_PARTIAL_MAX // 2:]
            self._partial = text
        else:
            body, self._partial = text[:cut + 1], text[cut + 1:]
            self.lines += body.count("\n")
            spans: dict[int, int] = {}
            for keyword in self._keywords:
                pos = body.find(keyword)
                while pos != -1:
                    start = body.rfind("\n", 0, pos) + 1
                    end = body.find("\n", pos)
                    spans[start] = end
                    pos = body.find(keyword, end)
            for start in sorted(spans):
                line = self._clean(body[start:spans[start]])
                if line:
                    self._look(line)
            self._tail(body)
        if "\r" in self._partial:  # a tqdm bar redrawn in place, no newline yet: its latest state counts
            last = self._partial.rpartition("\r")[2]
            self._partial = "\r" + last if last else ""
            if last:
                self._progress_only(last)

    def close(self) -> None:
        if self._partial:
            rest, self._partial = self._partial, ""
            self.feed(rest + "\n")

    @staticmethod
    def _clean(line: str) -> str:
        if "\r" in line:  # keep only the last redraw of a tqdm bar
            segments = [s for s in line.split("\r") if s.strip()]
            line = segments[-1] if segments else ""
        if "\x1b" in line:
            line = _ANSI.sub("", line)
        return line.rstrip()

    def _tail(self, body: str) -> None:
        """Append the chunk's last TAIL_LINES non-empty lines to the tail."""
        end, found = len(body) - 1, []
        while len(found) < TAIL_LINES and end >= 0:
            start = body.rfind("\n", 0, end) + 1
            line = self._clean(body[start:end])
            if line:
                found.append(cap_line(line))
            end = start - 1
        self.tail.extend(reversed(found))

    def _progress_only(self, segment: str) -> None:
        m = _TQDM.search(segment)
        if m:
            self._tqdm(int(m.group(2)), int(m.group(3)))

    # -- interpreting --------------------------------------------------------------------------------
    def _tqdm(self, done: int, total: int) -> None:
        # Stage lines are logged only for the measured request (never for warmup), so a bar seen before
        # the first stage line while warmup is on belongs to warmup.
        if self.in_warmup or (self.warmup_expected and self.stage is None):
            return
        self.step, self.steps_total = done, total
        if total:
            self.phase = "denoising"

    def _look(self, line: str) -> None:
        m = _TQDM.search(line)
        if m and "Warmup requests" not in line:
            self._tqdm(int(m.group(2)), int(m.group(3)))
        if "server_args: " in line:
            raw = line.split("server_args: ", 1)[1]
            try:
                self.server_args = json.loads(raw)
            except ValueError:
                self.server_args = cap_line(raw, 4000)
            if self.phase == "starting":
                self.phase = "loading"
            return
        m = _STAGE_START.search(line)
        if m:
            if self.in_warmup:
                self.in_warmup, self.warmup_done = False, True
            self.stage = m.group(1)
            self.phase = "denoising" if "Denois" in self.stage else f"stage:{self.stage}"
            return
        m = _STAGE_END.search(line)
        if m:
            self.stages_done[m.group(1)] = float(m.group(2))
            return
        m = _STAGES_LIST.search(line)
        if m:
            self.stages_planned = re.findall(r"'([^']+)'", m.group(1))
            return
        m = _WARMUP_EXCLUDED.search(line)
        if m:
            self.warmup_excluded_s = float(m.group(1))
            self.phase = "finishing"
            return
        m = _WARMUP_COLD.search(line)
        if m:
            self.warmup_failed, self.cold_s = True, float(m.group(1))
            return
        if _WARMUP_FAILED.search(line):
            self.warmup_failed = True
            self.in_warmup, self.warmup_done = False, True
            return
        if _WARMUP_DONE.search(line):
            self.in_warmup, self.warmup_done = False, True
            return
        if _WARMUP_START.search(line) and not self.warmup_done:
            self.in_warmup = True
            self.phase = "warmup"
            return
        m = _MEM_USAGE.search(line)
        if m:
            self.memory_peak_mb = float(m.group(1))
            return
        if _VRAM_LINE.search(line):
            if len(self.vram_lines) < 20:
                self.vram_lines.append(cap_line(line, 4000))
            return
        m = _DUMPED.search(line)
        if m:
            self.dumped_to = m.group(1)
            return
        m = _SAVED.search(line)
        if m:
            if len(self.saved_to) < 50:
                self.saved_to.append(m.group(1))
            self.phase = "saving"
            return
        if _FALLBACK.search(line):
            self.fallback_line = cap_line(line)
        if _FAILED_MARK.search(line) and self.generation_failed is None and "Generation failed" in line:
            self.generation_failed = cap_line(line)
        if _ERROR_HINT.search(line):
            for code, pattern in ERROR_PATTERNS:
                if code not in self.errors and pattern.search(line):
                    self.errors[code] = cap_line(line)
            if "rror" in line and "Traceback" not in line:
                self.last_error_line = cap_line(line)

    # -- conclusions ---------------------------------------------------------------------------------
    def error_code(self) -> str | None:
        """The most specific error class the log shows, if any."""
        for code, _ in ERROR_PATTERNS:
            if code in self.errors:
                return code
        return None

    def fraction(self) -> float:
        """Progress of this one sglang process, 0..1, monotone by phase."""
        if self.phase == "finishing" or self.dumped_to:
            return 0.99
        if self.phase == "saving":
            return 0.97
        if self.steps_total and self.phase == "denoising":
            return _DENOISE_START + (_DENOISE_END - _DENOISE_START) * min(1.0, self.step / self.steps_total)
        if self.stage is not None:
            done = self.steps_total and self.step >= self.steps_total
            return _DENOISE_END if done else _DENOISE_START
        if self.in_warmup or self.warmup_done:
            return _LOAD_END if self.in_warmup else _WARMUP_END
        if self.phase == "loading":
            return 0.05
        return 0.0

    def message(self) -> str:
        if self.phase == "denoising" and self.steps_total:
            return f"denoising step {self.step}/{self.steps_total}"
        if self.phase.startswith("stage:"):
            return f"stage {self.stage}"
        return self.phase


class LogFollower:
    """Reads a log file incrementally (from where it stopped) into a LogState."""

    CHUNK = 1 << 20

    def __init__(self, path: str, warmup_expected: bool = True, live: bool = False):
        self.path = path
        self.offset = 0
        self.state = LogState(warmup_expected, live=live)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # tqdm bars are multibyte

    def poll(self) -> bool:
        """Read what was appended since last time; returns whether anything was."""
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return False
        if size <= self.offset:
            return False
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            while True:
                data = f.read(self.CHUNK)
                if not data:
                    break
                self.offset += len(data)
                self.state.feed(self._decoder.decode(data))
        return True

    def finish(self) -> LogState:
        self.poll()
        self.state.close()
        return self.state


def read_log(path: str, warmup_expected: bool = True) -> LogState:
    return LogFollower(path, warmup_expected).finish()
