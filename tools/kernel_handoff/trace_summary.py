"""One streaming pass over a trace: GPU time by kind of work, idle gaps, and the top kernels with their shapes.

Memory stays bounded by the number of distinct kernel names and op signatures, plus 4 bytes per CPU op id:
- kernels are aggregated by name;
- busy time per device is a union of kernel intervals, merged through a small reorder heap (events of one device
  arrive nearly, not exactly, in time order);
- shapes: a kernel's `External id` names the CPU op that launched it (`cat: cpu_op`, whose args hold `Input Dims`
  and `Input type` when the profiler ran with record_shapes, as sglang's does). Each op's signature is interned
  and its id kept in a compact array, so the link resolves whichever of the two events comes first in the file.
"""

from __future__ import annotations

import heapq
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .classify import KINDS, classify_kernel
from .trace_reader import iter_events, require_trace

GPU_CATS = frozenset({"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"})
REORDER_WINDOW = 4096  # kernel intervals held back per device before they are merged in time order
SAMPLES_PER_KERNEL = 4  # External ids kept per kernel name (its longest launches), to find their shapes
MAX_DENSE_ID = 1 << 26  # External ids above this go to a dict instead of the dense array


@dataclass
class KernelStats:
    name: str
    kind: str
    family: str
    sglang_kernel: bool
    total_us: float = 0.0
    count: int = 0
    max_us: float = 0.0
    samples: list[tuple[float, int]] = field(default_factory=list)  # min-heap of (dur, external id)


@dataclass
class DeviceTimeline:
    start: float = float("inf")
    end: float = float("-inf")
    frontier: float = float("-inf")
    busy_us: float = 0.0
    pending: list[tuple[float, float]] = field(default_factory=list)

    def add(self, ts: float, end: float) -> None:
        self.start = min(self.start, ts)
        self.end = max(self.end, end)
        heapq.heappush(self.pending, (ts, end))
        if len(self.pending) > REORDER_WINDOW:
            self._merge(*heapq.heappop(self.pending))

    def _merge(self, ts: float, end: float) -> None:
        if end <= self.frontier:
            return
        self.busy_us += end - max(ts, self.frontier)
        self.frontier = end

    def finish(self) -> None:
        while self.pending:
            self._merge(*heapq.heappop(self.pending))

    @property
    def window_us(self) -> float:
        return max(0.0, self.end - self.start) if self.end >= self.start else 0.0


class OpSignatures:
    """CPU op External id -> interned (op name, input dims, input types)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[tuple[str, Any, Any]] = []
        self.dense = array("i")
        self.sparse: dict[int, int] = {}

    def add(self, ext_id: int, name: str, dims: Any, types: Any) -> None:
        key = f"{name}\x00{dims!r}\x00{types!r}"  # repr: cheaper than json.dumps, and as unique
        sig = self.index.get(key)
        if sig is None:
            sig = self.index[key] = len(self.values)
            self.values.append((name, dims, types))
        if 0 <= ext_id < MAX_DENSE_ID:
            if ext_id >= len(self.dense):
                grow = max(ext_id + 1, 2 * len(self.dense)) - len(self.dense)
                self.dense.extend(array("i", [-1]) * grow)
            self.dense[ext_id] = sig
        else:
            self.sparse[ext_id] = sig

    def get(self, ext_id: int) -> tuple[str, Any, Any] | None:
        sig = self.dense[ext_id] if 0 <= ext_id < len(self.dense) else self.sparse.get(ext_id, -1)
        return self.values[sig] if sig >= 0 else None


@dataclass
class TraceSummary:
    path: str
    header: dict[str, Any]
    kernels: dict[str, KernelStats]
    kind_us: dict[str, float]
    devices: dict[Any, DeviceTimeline]
    ops: OpSignatures
    events: int = 0
    gpu_events: int = 0
    profiler_steps: int = 0

    @property
    def window_us(self) -> float:
        return sum(d.window_us for d in self.devices.values())

    @property
    def busy_us(self) -> float:
        return sum(d.busy_us for d in self.devices.values())

    @property
    def idle_us(self) -> float:
        return max(0.0, self.window_us - self.busy_us)

    def shapes_of(self, stats: KernelStats) -> tuple[str | None, Any, Any]:
        """The launching op's name, input dims and types, from the kernel's longest launches."""
        for _, ext_id in sorted(stats.samples, reverse=True):
            found = self.ops.get(ext_id)
            if found is not None:
                return found
        return None, None, None


def _ext_id(args: dict) -> int | None:
    value = args.get("External id", args.get("external id"))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def summarize_trace(path: str | Path) -> TraceSummary:
    """Read a trace once and aggregate it. Raises ToolInputError for empty, truncated or non-trace files."""
    header, prefix = require_trace(path)
    kernels: dict[str, KernelStats] = {}
    kind_us = dict.fromkeys(KINDS, 0.0)
    devices: dict[Any, DeviceTimeline] = {}
    ops = OpSignatures()
    summary = TraceSummary(str(path), header, kernels, kind_us, devices, ops)
    events = gpu_events = steps = 0
    add_op, push, replace = ops.add, heapq.heappush, heapq.heapreplace
    for event in iter_events(path, prefix):
        events += 1
        cat = event.get("cat")
        if cat == "cpu_op":
            args = event.get("args")
            if isinstance(args, dict) and "Input Dims" in args:
                ext = _ext_id(args)
                if ext is not None:
                    add_op(ext, str(event.get("name", "")), args["Input Dims"], args.get("Input type"))
            continue
        if cat not in GPU_CATS:
            if cat == "user_annotation" and str(event.get("name", "")).startswith("ProfilerStep#"):
                steps += 1
            continue
        dur, ts = event.get("dur"), event.get("ts")
        if dur.__class__ not in (float, int) or ts.__class__ not in (float, int) or dur < 0:
            continue
        gpu_events += 1
        name = event.get("name")
        stats = kernels.get(name)
        if stats is None:
            name = str(name)
            kc = classify_kernel(name, str(cat))
            stats = kernels[name] = KernelStats(name, kc.kind, kc.family, kc.sglang_kernel)
        stats.total_us += dur
        stats.count += 1
        if dur > stats.max_us:
            stats.max_us = dur
        kind_us[stats.kind] += dur
        args = event.get("args")
        if isinstance(args, dict):
            ext = _ext_id(args)
            if ext is not None:
                if len(stats.samples) < SAMPLES_PER_KERNEL:
                    push(stats.samples, (dur, ext))
                elif dur > stats.samples[0][0]:
                    replace(stats.samples, (dur, ext))
            device = args.get("device", event.get("pid"))
        else:
            device = event.get("pid")
        timeline = devices.get(device)
        if timeline is None:
            timeline = devices[device] = DeviceTimeline()
        timeline.add(ts, ts + dur)
    for timeline in devices.values():
        timeline.finish()
    summary.events, summary.gpu_events, summary.profiler_steps = events, gpu_events, steps
    kind_us["idle"] = summary.idle_us
    return summary
