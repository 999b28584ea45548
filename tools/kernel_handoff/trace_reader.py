"""Stream a torch profiler trace (Chrome trace JSON, gzipped or not) event by event, in constant memory.

sglang writes `<request_id>-<N>_steps-global-rank<R>.trace.json.gz` (0.5.8+) or `<request_id>-rank<R>.trace.json.gz`
(0.5.6) through torch.profiler's export_chrome_trace: one JSON object whose keys are a small header
(schemaVersion, deviceProperties, distributedInfo, ...) and `traceEvents`, a list that can hold millions of events.
Only the header is built as Python objects; events are yielded one at a time by ijson's C backend.
The Chrome "JSON array" form (a bare list of events) is read too.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import ijson
from ijson.common import ObjectBuilder

from ..problems import ToolInputError

GZIP_MAGIC = b"\x1f\x8b"
HEADER_EVENT_LIMIT = 200_000  # parser events spent on the header before giving up on it (a header is small)
_FIX = "Pass the .trace.json.gz (or .json) file sglang's --profile wrote, in full."


def _open(path: Path) -> IO[bytes]:
    raw = path.open("rb")
    magic = raw.read(2)
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw, mode="rb") if magic == GZIP_MAGIC else raw


def _check_path(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ToolInputError("trace_not_found", f"No trace file at {p}.",
                             "Pass the path sglang printed after 'Saved profiler traces to:', or a run_id of a "
                             "profiled run.", flag="trace")
    if p.stat().st_size == 0:
        raise ToolInputError("empty_trace", f"{p} is empty (0 bytes).",
                             "The profiler may still have been writing it or failed; rerun with --profile.",
                             flag="trace")
    return p


def _read_error(p: Path, exc: BaseException) -> ToolInputError:
    text = str(exc)[:160]
    if isinstance(exc, (EOFError, ijson.IncompleteJSONError)) or "incomplete" in text.lower() \
            or "premature" in text.lower():
        return ToolInputError("truncated_trace", f"{p} ends early ({type(exc).__name__}: {text}); the trace is "
                              "truncated, e.g. the run was killed while the profiler wrote it.", _FIX, flag="trace")
    return ToolInputError("bad_trace", f"{p} is not a readable Chrome trace ({type(exc).__name__}: {text}).",
                          _FIX, flag="trace")


_READ_ERRORS = (OSError, EOFError, zlib.error, ijson.JSONError, ValueError, UnicodeDecodeError)


def _first_byte(f: IO[bytes]) -> bytes:
    while True:
        chunk = f.read(4096)
        if not chunk:
            return b""
        stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
        if stripped:
            return stripped[:1]


def read_header(path: str | Path) -> tuple[dict[str, Any], str]:
    """The trace's top-level keys other than traceEvents (as far as they come before it), and the events prefix.

    Raises ToolInputError for an empty, truncated or non-trace file.
    """
    p = _check_path(path)
    try:
        with _open(p) as f:
            first = _first_byte(f)
        if first == b"[":
            return {}, "item"
        if first != b"{":
            what = "empty once decompressed" if not first else f"not JSON (starts with {first!r})"
            code = "empty_trace" if not first else "not_a_trace"
            raise ToolInputError(code, f"{p} is {what}, so not a torch profiler trace.", _FIX, flag="trace")
        header: dict[str, Any] = {}
        with _open(p) as f:
            key, builder = None, None
            for count, (prefix, event, value) in enumerate(ijson.parse(f)):
                if prefix == "" and event in ("map_key", "end_map"):
                    if key is not None and builder is not None:
                        header[key] = builder.value
                    if event == "end_map" or value == "traceEvents":
                        return header, ("traceEvents.item" if value == "traceEvents" else "")
                    key, builder = value, ObjectBuilder()
                elif builder is not None and prefix != "":
                    builder.event(event, value)
                if count > HEADER_EVENT_LIMIT:
                    break
            else:
                return header, ""
    except ToolInputError:
        raise
    except _READ_ERRORS as exc:
        raise _read_error(p, exc) from None
    return header, "traceEvents.item"  # a huge header: assume the events follow


def iter_events(path: str | Path, prefix: str = "traceEvents.item") -> Iterator[dict]:
    """Yield each trace event (a dict); non-dict items are skipped. Read errors become ToolInputError."""
    p = _check_path(path)
    try:
        with _open(p) as f:
            for item in ijson.items(f, prefix, use_float=True):
                if isinstance(item, dict):
                    yield item
    except _READ_ERRORS as exc:
        raise _read_error(p, exc) from None


def require_trace(path: str | Path) -> tuple[dict[str, Any], str]:
    """read_header, and an error when the JSON has no traceEvents at all (a perf dump, some other JSON)."""
    header, prefix = read_header(path)
    if not prefix:
        keys = ", ".join(list(header)[:8]) or "none"
        raise ToolInputError("not_a_trace", f"{Path(path).expanduser()} is JSON without `traceEvents` (top-level "
                             f"keys: {keys}), so not a torch profiler trace.",
                             "Pass the trace file, not the perf dump; the perf dump goes in `perf_dump`.",
                             flag="trace")
    return header, prefix
