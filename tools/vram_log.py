"""parse_vram_log: read the VRAM analysis, peak memory and OOM diagnosis from an `sglang generate` log.

Log lines by release (from sglang/multimodal_gen/runtime/managers/gpu_worker.py, do_mem_analysis, and
runtime/entrypoints/diffusion_generator.py); the logger format is "[%m-%d %H:%M:%S] message", no level name:
  A0 0.5.8, INFO       "Peak GPU memory: X GB, Remaining GPU memory at peak: Y GB. Components that can stay
                        resident: [...]"  (X is max_memory_allocated)
  A  0.5.9 INFO, 0.5.10-0.5.17 DEBUG
                       "Peak GPU memory: X GB, Peak allocated: X GB, Memory pool overhead: X GB (P%), Remaining
                        GPU memory at peak: X GB. Components that could stay resident (based on the last request
                        workload): [...]. Related offload server args to disable: --a, --b"  (or "None")
  B  0.5.18-0.5.19 DEBUG "GPU memory: peak=X GB, allocated=X GB, pool=X GB (P%), headroom=X GB. Components that can
                        remain on GPU: [...]. Adjust --cpu-offload-components or --layerwise-offload-components to
                        change residency."
  C  0.5.20+ DEBUG     "GPU memory: peak=X GB, allocated=X GB, pool=X GB (P%), headroom=X GB." then, only when the
                        list is not empty, " Components that can remain on GPU: [...]. Make it explicit with
                        --component-residency <name>=resident" + ("; --performance-mode auto with server warmup
                        applies safe adjustments automatically." in 0.5.20-0.5.22, "." from 0.5.23)
  all 0.5.8+ INFO      "Memory usage - Max peak: X MB, Avg peak: Y MB"
  OOM 0.5.8+ WARNING   "OOM detected. Possible solutions:" then "  - If the OOM occurs during loading..." and
                       "  - If the OOM occurs during runtime:" each with numbered remedies; a runtime OOM follows
                       "Error executing request <id>: ..." (0.5.9+).
  debug marker 0.5.9+  "[<Stage>] started... (X GB left)" is printed only at DEBUG.
The file is streamed in blocks; a byte-level search for a few needles picks the lines the regexes see.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import BinaryIO, Iterator

from pydantic import BaseModel, Field

from ..knowledge import releases
from .perf_dump import VersionRange
from .vram_advice import (CommandValidator, ImprovedCommand, SuggestedChange, improve_command, is_sglang_generate,
                          not_sglang_problem, split_command, suggest_changes)
from .problems import Problem, ToolInputError

MAX_TEXT_CHARS = 4 * 1024 * 1024
BLOCK = 2 * 1024 * 1024
MAX_LINE = 64 * 1024
MAX_LINES_USED = 20
MAX_REQUESTS = 50
OOM_BLOCK_LINES = 40
GIB_PER_MIB = 1 / 1024

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NUM = r"(-?\d+(?:\.\d+)?|nan|-?inf)"
RE_A = re.compile(
    rf"Peak GPU memory: {NUM} GB, Peak allocated: {NUM} GB, Memory pool overhead: {NUM} GB \({NUM}%\), "
    rf"Remaining GPU memory at peak: {NUM} GB\.(?: Components that could stay resident \(based on the last request "
    r"workload\): (\[.*?\])\.(?: Related offload server args to disable: ([-\w, ]+))?)?")
RE_A0 = re.compile(rf"Peak GPU memory: {NUM} GB, Remaining GPU memory at peak: {NUM} GB\."
                   r"(?: Components that can stay resident: (\[.*?\]))?")
RE_BC = re.compile(rf"GPU memory: peak={NUM} GB, allocated={NUM} GB, pool={NUM} GB \({NUM}%\), headroom={NUM} GB\."
                   r"(?: Components that can remain on GPU: (\[.*?\])\.)?(?P<tail>.*)")
RE_MAX_PEAK = re.compile(rf"Memory usage - Max peak: {NUM} MB, Avg peak: {NUM} MB")
RE_TORCH_OOM = re.compile(r"(?:CUDA|HIP|MPS|XPU|NPU)?\s*out of memory\. Tried to allocate ([\d.]+) ([KMGT]i?B)"
                          r"(?:\. GPU (\d+) has a total capacity of ([\d.]+) ([KMGT]i?B) of which ([\d.]+) ([KMGT]i?B)"
                          r" is free)?", re.IGNORECASE)
RE_LOG_LEVEL = re.compile(r"""['"]?log_level['"]?\s*[:=]\s*['"](\w+)['"]""")
RE_RANK = re.compile(r"\b(?:rank|tp|worker)[\s_:=-]*(\d+)", re.IGNORECASE)
RE_ITEM = re.compile(r"^\s*(\d+)\.\s+(.*)$")
# An analysis line of some format, whether or not the full regexes can read it.
ANALYSIS_MARKERS = ("Peak GPU memory:", "GPU memory: peak=")

# Byte needles: a block with none of them is skipped without decoding; a line with one is parsed.
# b"emory" is one pass for "GPU memory", "Memory usage - Max peak", "out of memory" and "OutOfMemoryError".
NEEDLES = (b"emory", b"OOM detected", b"Error executing", b"server_args", b" GB left)", b"Scheduler loop started",
           b"Initialized device, model")
LOAD_NEEDLES = (b"Scheduler loop started", b"Initialized device, model")
DEBUG_NEEDLE = b" GB left)"

FORMAT_VERSIONS = {
    "A0": VersionRange(since="0.5.8", until="0.5.8"),
    "A": VersionRange(since="0.5.9", until="0.5.17"),
    "B": VersionRange(since="0.5.18", until="0.5.19"),
    "C": VersionRange(since="0.5.20", until=None),
    "C-0.5.20": VersionRange(since="0.5.20", until="0.5.22"),
    "C-0.5.23": VersionRange(since="0.5.23", until=None),
}
class LineRef(BaseModel):
    line: int = Field(description="1-based line number in the log.")
    text: str


class RequestVram(BaseModel):
    index: int
    line: int
    rank: int | None = None
    format: str
    peak_reserved_gb: float | None = Field(default=None, description="GiB (sglang prints 'GB').")
    peak_allocated_gb: float | None = Field(default=None, description="GiB.")
    pool_overhead_gb: float | None = Field(default=None, description="Reserved minus allocated at peak, GiB.")
    pool_overhead_pct: float | None = None
    headroom_gb: float | None = Field(default=None, description="GPU memory left at peak, GiB.")
    components_can_stay_resident: list[str] = Field(default_factory=list)
    flags_to_disable: list[str] = Field(default_factory=list)


class OomInfo(BaseModel):
    detected: bool = False
    phase: str | None = Field(default=None, description="'load' or 'runtime'.")
    line: int | None = None
    message: str | None = Field(default=None, description="The out-of-memory error line.")
    tried_to_allocate_gb: float | None = Field(default=None, description="GiB.")
    gpu_total_gb: float | None = Field(default=None, description="GiB.")
    gpu_free_gb: float | None = Field(default=None, description="GiB.")
    remedies: list[str] = Field(default_factory=list, description="The runtime's own suggestions for this phase.")


class VramLogResult(BaseModel):
    format: str | None = Field(default=None, description="A0, A, B or C (see versions); null if no analysis line.")
    versions: VersionRange | None = Field(default=None, description="sglang releases whose log format this is.")
    log_level: str | None = Field(default=None, description="'debug' or 'info' when the log shows it.")
    peak_reserved_gb: float | None = Field(default=None, description="Max over requests, GiB.")
    peak_allocated_gb: float | None = Field(default=None, description="Max over requests, GiB.")
    pool_overhead_gb: float | None = Field(default=None, description="Of the request with the highest peak, GiB.")
    pool_overhead_pct: float | None = None
    headroom_gb: float | None = Field(default=None, description="Min over requests, GiB.")
    components_can_stay_resident: list[str] = Field(
        default_factory=list, description="Components every request could keep on the GPU.")
    flags_to_disable: list[str] = Field(default_factory=list, description="Offload flags the log names (0.5.9-0.5.17).")
    suggested_changes: list[SuggestedChange] = Field(default_factory=list)
    oom: OomInfo = Field(default_factory=OomInfo)
    max_peak_mb: float | None = Field(default=None, description="From 'Memory usage - Max peak' (MiB).")
    avg_peak_mb: float | None = None
    requests: list[RequestVram] = Field(default_factory=list)
    requests_total: int = 0
    requests_truncated: bool = False
    lines_used: list[LineRef] = Field(default_factory=list)
    lines_scanned: int = 0
    bytes_scanned: int = 0
    improved_command: ImprovedCommand | None = None
    summary: str = ""
    warnings: list[Problem] = Field(default_factory=list)


# --- Streaming scan ---------------------------------------------------------------------------------------------

class _Scan:
    """Mutable state while streaming one log."""

    def __init__(self) -> None:
        self.needles = list(NEEDLES)
        self.lines = 0
        self.bytes = 0
        self.nul_bytes = 0
        self.oom_follow = 0  # lines still to take after "OOM detected"


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        block = stream.read(BLOCK)
        if not block:
            return
        yield block


def _follow(body: bytes, pos: int, count: int, starts: set[int], scan: _Scan) -> None:
    """Add the starts of up to `count` lines from `pos`; what the block lacks is taken from the next one."""
    while count and pos < len(body):
        starts.add(pos)
        count -= 1
        nl = body.find(b"\n", pos)
        pos = len(body) if nl < 0 else nl + 1
    scan.oom_follow = count


def _hit_lines(body: bytes, scan: _Scan) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for the lines of `body` (whole lines) that hold a needle, plus OOM follow-up lines."""
    base = scan.lines
    starts: set[int] = set()
    if scan.oom_follow:
        _follow(body, 0, scan.oom_follow, starts, scan)
    for needle in scan.needles:
        pos = body.find(needle)
        while pos >= 0:
            start = body.rfind(b"\n", 0, pos) + 1
            starts.add(start)
            end = body.find(b"\n", pos)
            if needle == b"OOM detected" and end >= 0:
                _follow(body, end + 1, OOM_BLOCK_LINES, starts, scan)  # the remedies that follow
            if end < 0:
                break
            pos = body.find(needle, end)
    counted_to, line_no = 0, base
    for start in sorted(starts):
        line_no += body.count(b"\n", counted_to, start)
        counted_to = start
        end = body.find(b"\n", start)
        yield line_no + 1, body[start: end if end >= 0 else len(body)][:MAX_LINE]
    scan.lines = base + body.count(b"\n")


def scan_lines(stream: BinaryIO, scan: _Scan) -> Iterator[tuple[int, str]]:
    """Stream a log and yield (line number, cleaned text) for candidate lines. Memory stays about one block."""
    carry = b""
    for block in _blocks(stream):
        scan.bytes += len(block)
        if scan.bytes <= BLOCK:
            scan.nul_bytes += block.count(b"\x00", 0, 65536)
        buf = carry + block if carry else block
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            # one enormous line (binary, or a tqdm stream without newlines): keep only its tail
            carry = buf[-MAX_LINE:]
            continue
        body, carry = buf[:cut], buf[cut:]
        if len(carry) > MAX_LINE:
            carry = carry[-MAX_LINE:]
        for line_no, raw in _hit_lines(body, scan):
            yield line_no, _clean(raw)
    if carry:
        for line_no, raw in _hit_lines(carry + b"\n", scan):
            yield line_no, _clean(raw)


def _clean(raw: bytes) -> str:
    text = ANSI.sub("", raw.decode("utf-8", errors="replace"))
    # tqdm rewrites a line with \r: keep the last segment that says something
    if "\r" in text:
        parts = [p for p in text.split("\r") if p.strip()]
        text = next((p for p in reversed(parts) if any(k in p for k in ("GPU memory", "OOM", "memory", "server_args"))),
                    parts[-1] if parts else "")
    return text.rstrip("\n")


# --- Line parsing -----------------------------------------------------------------------------------------------

def _f(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except ValueError:
        return None
    return out if out == out and abs(out) != float("inf") else None


def _components(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        value = ast.literal_eval(text) if len(text) < 4096 else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str)]
    return re.findall(r"'([^']+)'", text)


def _rank(prefix: str) -> int | None:
    m = RE_RANK.search(prefix)
    return int(m.group(1)) if m else None


def parse_analysis_line(text: str) -> dict | None:
    """One VRAM-analysis line -> its values and format, or None."""
    m = RE_A.search(text)
    if m:
        args = m.group(7)
        flags = [a.strip() for a in args.split(",") if a.strip().startswith("--")] if args else []
        return dict(format="A", peak_reserved_gb=_f(m.group(1)), peak_allocated_gb=_f(m.group(2)),
                    pool_overhead_gb=_f(m.group(3)), pool_overhead_pct=_f(m.group(4)), headroom_gb=_f(m.group(5)),
                    components_can_stay_resident=_components(m.group(6)), flags_to_disable=flags,
                    rank=_rank(text[:m.start()]))
    m = RE_BC.search(text)
    if m:
        tail = m.group("tail") or ""
        if "Adjust --cpu-offload-components" in tail:
            fmt = "B"
        elif "--performance-mode auto" in tail:
            fmt = "C-0.5.20"
        elif "--component-residency" in tail:
            fmt = "C-0.5.23"
        else:
            fmt = "C"
        return dict(format=fmt, peak_reserved_gb=_f(m.group(1)), peak_allocated_gb=_f(m.group(2)),
                    pool_overhead_gb=_f(m.group(3)), pool_overhead_pct=_f(m.group(4)), headroom_gb=_f(m.group(5)),
                    components_can_stay_resident=_components(m.group(6)), flags_to_disable=[],
                    rank=_rank(text[:m.start()]))
    m = RE_A0.search(text)
    if m:
        # 0.5.8 printed max_memory_allocated as "Peak GPU memory"
        return dict(format="A0", peak_reserved_gb=None, peak_allocated_gb=_f(m.group(1)), pool_overhead_gb=None,
                    pool_overhead_pct=None, headroom_gb=_f(m.group(2)),
                    components_can_stay_resident=_components(m.group(3)), flags_to_disable=[],
                    rank=_rank(text[:m.start()]))
    return None


def _to_gb(value: str, unit: str) -> float | None:
    v = _f(value)
    if v is None:
        return None
    return v * {"K": 1 / 1024 ** 2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}[unit[0].upper()]


def _remedies(block: list[str], phase: str | None) -> list[str]:
    """The numbered items under the OOM message's section for `phase`."""
    sections: dict[str, list[str]] = {"load": [], "runtime": []}
    current = None
    for line in block:
        low = line.lower()
        if "if the oom occurs during loading" in low:
            current = "load"
            continue
        if "if the oom occurs during runtime" in low:
            current = "runtime"
            continue
        if "open an issue" in low or "tested launch commands" in low:
            current = None
            continue
        if current is None:
            continue
        item = RE_ITEM.match(line)
        if item:
            sections[current].append(item.group(2).strip())
        elif sections[current] and line.strip() and not line.strip().startswith("-"):
            sections[current][-1] += " " + line.strip()
    return sections.get(phase or "runtime", [])


# --- The tool ---------------------------------------------------------------------------------------------------

def _open(log_path: str | None, text: str | None) -> tuple[BinaryIO, str]:
    import io
    if (log_path is None) == (text is None):
        raise ToolInputError("bad_input", "Give exactly one of `log_path` and `text`.",
                             "Pass log_path for a file on this machine, or text for a pasted log.")
    if text is not None:
        if not isinstance(text, str):
            raise ToolInputError("bad_input", "`text` must be a string.", flag="text")
        if len(text) > MAX_TEXT_CHARS:
            raise ToolInputError("text_too_long", f"`text` has {len(text)} characters; the cap is {MAX_TEXT_CHARS}.",
                                 "Save the log to a file and pass log_path (files of any size are streamed).",
                                 flag="text")
        return io.BytesIO(text.encode("utf-8", errors="replace")), "<text>"
    path = Path(str(log_path)).expanduser()
    if not path.exists():
        raise ToolInputError("log_not_found", f"No log at {path}.", "Pass the path of the sglang generate log.",
                             flag="log_path")
    if not path.is_file():
        raise ToolInputError("log_not_a_file", f"{path} is not a regular file.", "Pass the log file itself.",
                             flag="log_path")
    try:
        return open(path, "rb"), str(path)
    except OSError as exc:
        raise ToolInputError("log_unreadable", f"Cannot read {path}: {exc.strerror}.", flag="log_path") from None


def _version_tuple(version: str | None) -> tuple[int, ...] | None:
    try:
        return releases.parse_version(version) if version else None
    except ValueError:  # a hint the caller mistyped: read the log without it
        return None


class _Aggregate:
    """Running maxima, minima and intersections over every request, so memory does not grow with requests."""

    def __init__(self) -> None:
        self.count = 0
        self.top: RequestVram | None = None
        self.max_reserved: float | None = None
        self.max_allocated: float | None = None
        self.min_headroom: float | None = None
        self.common: list[str] | None = None
        self.flags: list[str] = []
        self.formats: set[str] = set()
        self.last_format: str | None = None
        self.specific_c: str | None = None

    def add(self, r: RequestVram) -> None:
        self.count += 1
        key = (r.peak_reserved_gb or 0.0, r.peak_allocated_gb or 0.0)
        if self.top is None or key > (self.top.peak_reserved_gb or 0.0, self.top.peak_allocated_gb or 0.0):
            self.top = r
        self.max_reserved = _max(self.max_reserved, r.peak_reserved_gb)
        self.max_allocated = _max(self.max_allocated, r.peak_allocated_gb)
        if r.headroom_gb is not None:
            self.min_headroom = r.headroom_gb if self.min_headroom is None else min(self.min_headroom, r.headroom_gb)
        comps = r.components_can_stay_resident
        self.common = list(comps) if self.common is None else [c for c in self.common if c in comps]
        self.flags += [f for f in r.flags_to_disable if f not in self.flags]
        self.formats.add(r.format)
        self.last_format = r.format
        if r.format.startswith("C-"):
            self.specific_c = r.format


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _drop_needles(scan: _Scan, needles: tuple[bytes, ...]) -> None:
    """Stop searching for one-time markers once seen: each needle costs a pass over every block."""
    scan.needles = [n for n in scan.needles if n not in needles]


class _Collector:
    def __init__(self) -> None:
        self.requests: list[RequestVram] = []  # the first MAX_REQUESTS; the rest only feed the aggregate
        self.agg = _Aggregate()
        self.lines_used: list[LineRef] = []
        self.max_peak: float | None = None
        self.avg_peak: float | None = None
        self.log_level: str | None = None
        self.load_done = False
        self.runtime_seen = False
        self.oom = OomInfo()
        self.oom_block: list[str] = []
        self.in_oom_block = False
        self.error_before_oom = False
        self.unparsed = 0  # analysis lines the regexes could not read
        self.first_unparsed: LineRef | None = None

    def use(self, line_no: int, text: str) -> None:
        if len(self.lines_used) < MAX_LINES_USED:
            self.lines_used.append(LineRef(line=line_no, text=text.strip()[:400]))

    def feed(self, line_no: int, text: str, scan: _Scan) -> None:
        if self.in_oom_block:
            if "OOM detected" not in text and len(self.oom_block) < OOM_BLOCK_LINES:
                self.oom_block.append(text)
                low = text.lower()
                if "open an issue" in low:
                    self.in_oom_block = False
                return
            self.in_oom_block = False
        if "GB left)" in text:
            self.log_level = "debug"
            self.runtime_seen = True
            _drop_needles(scan, (DEBUG_NEEDLE,))  # one is enough; stop paying for the rest
            return
        if "server_args" in text:
            m = RE_LOG_LEVEL.search(text)
            if m and self.log_level is None:
                self.log_level = m.group(1).lower()
                _drop_needles(scan, (b"server_args",))
            return
        if "Scheduler loop started" in text or "Initialized device, model" in text:
            self.load_done = True
            _drop_needles(scan, LOAD_NEEDLES)
            return
        if "Error executing" in text:
            self.runtime_seen = True
            self.error_before_oom = True
            self.use(line_no, text)
            return
        if "OOM detected" in text:
            self._oom(line_no, text)
            self.in_oom_block = True
            self.oom_block = []
            return
        if "out of memory" in text.lower() or "OutOfMemoryError" in text:
            self._oom(line_no, text)
            m = RE_TORCH_OOM.search(text)
            if m:
                self.oom.message = text.strip()[:400]
                self.oom.tried_to_allocate_gb = _to_gb(m.group(1), m.group(2))
                if m.group(4):
                    self.oom.gpu_total_gb = _to_gb(m.group(4), m.group(5))
                    self.oom.gpu_free_gb = _to_gb(m.group(6), m.group(7))
            elif self.oom.message is None:
                self.oom.message = text.strip()[:400]
            return
        m = RE_MAX_PEAK.search(text)
        if m:
            peak = _f(m.group(1))
            if peak is not None and (self.max_peak is None or peak > self.max_peak):
                self.max_peak, self.avg_peak = peak, _f(m.group(2))
            self.use(line_no, text)
            return
        values = parse_analysis_line(text)
        if values:
            self.runtime_seen = True
            request = RequestVram(index=self.agg.count, line=line_no, **values)
            self.agg.add(request)
            if len(self.requests) < MAX_REQUESTS:
                self.requests.append(request)
            self.use(line_no, text)
        elif any(marker in text for marker in ANALYSIS_MARKERS):
            self.runtime_seen = True
            self.unparsed += 1
            if self.first_unparsed is None:
                self.first_unparsed = LineRef(line=line_no, text=text.strip()[:400])
                self.use(line_no, text)

    def _oom(self, line_no: int, text: str) -> None:
        if not self.oom.detected:
            self.oom.detected = True
            self.oom.line = line_no
            self.oom.phase = "runtime" if (self.runtime_seen or self.load_done or self.error_before_oom) else "load"
            self.use(line_no, text)
        elif self.error_before_oom and self.oom.phase == "load":
            self.oom.phase = "runtime"


def _summarize(c: _Collector, result: VramLogResult) -> None:
    agg = c.agg
    if agg.count:
        result.peak_reserved_gb, result.peak_allocated_gb = agg.max_reserved, agg.max_allocated
        result.pool_overhead_gb, result.pool_overhead_pct = agg.top.pool_overhead_gb, agg.top.pool_overhead_pct
        result.headroom_gb = agg.min_headroom
        result.components_can_stay_resident = agg.common or []
        result.flags_to_disable = agg.flags
        fmt = agg.last_format
        if fmt == "C" and agg.specific_c:  # an empty-list C line does not say which 0.5.20+ release; another may
            fmt = agg.specific_c
        result.format = fmt.split("-")[0]
        result.versions = FORMAT_VERSIONS[fmt]
        if len({f.split("-")[0] for f in agg.formats}) > 1:
            result.warnings.append(Problem(code="mixed_formats", message=f"The log mixes formats "
                                           f"{sorted(agg.formats)}; it may hold runs of several sglang releases. "
                                           "The last one is used."))
        result.suggested_changes = suggest_changes(fmt, result.components_can_stay_resident, agg.flags)
    result.requests, result.requests_total = c.requests, agg.count
    result.requests_truncated = agg.count > len(c.requests)
    result.max_peak_mb, result.avg_peak_mb = c.max_peak, c.avg_peak
    result.log_level = c.log_level
    result.lines_used = c.lines_used
    if c.oom.detected:
        c.oom.remedies = _remedies(c.oom_block, c.oom.phase)
        result.oom = c.oom


def _unparsed_warning(c: _Collector, result: VramLogResult) -> None:
    if not c.unparsed or c.first_unparsed is None:
        return
    ref = c.first_unparsed
    read = f" ({c.agg.count} other analysis line(s) were read)" if c.agg.count else ""
    result.warnings.append(Problem(
        code="analysis_unparsed",
        message=f"Could not parse the analysis line: {c.unparsed} VRAM-analysis line(s) have an unexpected layout "
                f"(first at line {ref.line}: {ref.text[:160]!r}){read}.",
        fix="Check that the log is not cut or edited there; a new sglang release may have changed the line. "
            "max_peak_mb still comes from the 'Memory usage - Max peak' line when present."))


def _missing_analysis(c: _Collector, result: VramLogResult, version: tuple[int, ...] | None) -> None:
    if result.oom.detected:
        return  # a failed request never prints the analysis, at any level
    if c.unparsed:
        return  # the line is there (so the level was right) but unreadable: _unparsed_warning says so
    finished = c.max_peak is not None or c.runtime_seen
    if version is not None and version < (0, 5, 8):
        result.warnings.append(Problem(code="no_vram_analysis_in_release", message="sglang releases before 0.5.8 "
                                       "print no VRAM analysis.", fix="Upgrade sglang to get one."))
    elif version is not None and version < (0, 5, 10):
        result.warnings.append(Problem(code="no_vram_analysis", message="This release prints the VRAM analysis at "
                                       "INFO, but the log has none: the request probably did not finish.",
                                       fix="Check the log for errors, then rerun."))
    elif c.log_level == "debug":
        result.warnings.append(Problem(code="no_vram_analysis", message="The log is at debug level but has no VRAM "
                                       "analysis line: the request probably did not finish.",
                                       fix="Check the log for errors, then rerun."))
    else:
        where = "This log was written at INFO level" if c.log_level == "info" else \
            "No VRAM analysis line was found"
        result.warnings.append(Problem(
            code="rerun_with_debug", flag="--log-level",
            message=f"{where}; sglang 0.5.10 and later print the VRAM analysis only at debug level"
                    + ("" if finished else " (and no request seems to have finished)") + ".",
            fix="Rerun with --log-level debug (run_generate adds it)."))
    if c.max_peak is not None and result.peak_reserved_gb is None:
        result.warnings.append(Problem(code="peak_from_summary", message="Only the 'Memory usage - Max peak' line "
                                       "is available: see max_peak_mb (reserved memory from 0.5.9 on)."))


def parse_vram_log(log_path: str | None = None, text: str | None = None, command: str | list[str] | None = None,
                   sglang_version: str | None = None) -> VramLogResult:
    """Read an `sglang generate` log: peak VRAM, pool overhead, headroom, what could stay resident, and OOMs.

    Give `log_path` (streamed, any size) or `text` (a pasted log, capped). Reads the VRAM-analysis line of
    every sglang release (formats A0/A: 0.5.8-0.5.17, B: 0.5.18-0.5.19, C: 0.5.20+), ANSI colours, timestamps,
    rank prefixes and several requests (top-level peaks are the max over requests). Returns the changes to
    make spelled for the release that wrote the log (`--x-cpu-offload false` up to 0.5.19,
    `--component-residency <name>=resident` from 0.5.20), an OOM diagnosis (load or runtime) with the
    runtime's own remedies, and, given the original `sglang generate` command, the improved command (other
    commands get a warning, not an improved command). Each change lists `add` tokens, `remove` flags and
    `remove_values` (values dropped from list flags). A log written at INFO
    by a release that prints the analysis only at debug gets the advice to rerun with --log-level debug.
    `sglang_version` (optional) names the release that wrote the log, when known.
    """
    result = analyze_vram_log(log_path=log_path, text=text, sglang_version=sglang_version)
    if sglang_version and _version_tuple(sglang_version) is None:
        result.warnings.append(Problem(code="bad_sglang_version", flag="sglang_version",
                                       message=f"sglang_version {sglang_version[:80]!r} is not a version; ignored.",
                                       fix="Pass the release that wrote the log, e.g. '0.5.10.post1', or leave it out."))
    if command is not None:
        version = sglang_version or (result.versions.until or result.versions.since if result.versions else None)
        result.improved_command = _improved(command, result, _check_command_validator(version))
        result.summary = _summary_line(result)
    return result


def _check_command_validator(version: str | None) -> CommandValidator:
    """check_command's errors for an improved command, against the release that wrote the log."""
    def validate(argv: list[str], env: dict[str, str]) -> list[Problem]:
        from .check_command import check_argv  # the rules engine, only when a command is given

        try:  # flags and rules only: the log's host is not this one, so detect no GPUs
            return check_argv(argv, releases.resolve(version).version, None).errors
        except (ToolInputError, ValueError) as exc:
            return [exc.problem] if isinstance(exc, ToolInputError) else [Problem(code="bad_sglang_version",
                                                                                   message=str(exc))]
    return validate


def analyze_vram_log(log_path: str | None = None, text: str | None = None, command: str | list[str] | None = None,
                     sglang_version: str | None = None, validate: CommandValidator | None = None) -> VramLogResult:
    """parse_vram_log with a seam for a command validator (check_command), used for `improved_command`."""
    stream, source = _open(log_path, text)
    scan, collector = _Scan(), _Collector()
    try:
        with stream:
            for line_no, line in scan_lines(stream, scan):
                collector.feed(line_no, line, scan)
    except OSError as exc:
        raise ToolInputError("log_unreadable", f"Reading {source} failed: {exc}.", flag="log_path") from None
    result = VramLogResult(lines_scanned=scan.lines, bytes_scanned=scan.bytes)
    if scan.bytes == 0:
        result.warnings.append(Problem(code="empty_log", message="The log is empty.",
                                       fix="Pass the file sglang generate wrote (stdout and stderr)."))
        result.summary = "Empty log."
        return result
    if scan.nul_bytes > 0 and not collector.agg.count:
        result.warnings.append(Problem(code="binary_input", message="This looks like a binary file, not a text log.",
                                       fix="Pass the text log sglang generate wrote."))
        result.summary = "Not a text log."
        return result
    _summarize(collector, result)
    _unparsed_warning(collector, result)
    if not collector.agg.count:
        _missing_analysis(collector, result, _version_tuple(sglang_version))
    if command is not None:
        result.improved_command = _improved(command, result, validate)
    result.summary = _summary_line(result)
    return result


def _improved(command: str | list[str], result: VramLogResult,
              validate: CommandValidator | None) -> ImprovedCommand | None:
    """The improved command, or None with a warning when `command` is not an `sglang generate` line."""
    _, argv = split_command(command)
    if not is_sglang_generate(argv):
        result.warnings.append(not_sglang_problem(argv))
        return None
    return improve_command(command, result.suggested_changes, validate)


def _summary_line(r: VramLogResult) -> str:
    parts = []
    if r.oom.detected:
        parts.append(f"OOM at {r.oom.phase}.")
    if r.peak_reserved_gb is not None:
        parts.append(f"Peak reserved {r.peak_reserved_gb:.2f} GiB, headroom {r.headroom_gb} GiB over "
                     f"{r.requests_total} request(s).")
    elif r.peak_allocated_gb is not None:
        parts.append(f"Peak allocated {r.peak_allocated_gb:.2f} GiB.")
    if r.components_can_stay_resident:
        parts.append(f"Could stay resident: {', '.join(r.components_can_stay_resident)}.")
    if not parts:
        parts.append("No VRAM analysis in this log.")
    return " ".join(parts)
