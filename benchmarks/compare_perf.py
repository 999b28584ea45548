"""compare_perf on two perf dumps of 1000 denoise steps, against a plain json.load of both files.

Target: under 20 ms per comparison without the chart. Run: python benchmarks/compare_perf.py [--steps 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from sglang_diffusion_mcp.tools.compare_perf import compare_perf

STAGES = ["InputValidationStage", "TextEncodingStage", "TimestepPreparationStage", "LatentPreparationStage",
          "DenoisingStage", "DecodingStage"]


def dump(steps: int, mean: float, seed: int) -> dict:
    """A dump in the 0.5.23 layout (PerformanceLogger.dump_benchmark_report)."""
    rng = random.Random(seed)
    times = [mean + rng.uniform(-2, 2) for _ in range(steps)]
    stage_ms = [0.1, 120.0, 2.0, 1.5, sum(times), 370.0]
    snap = {"allocated_mb": 33100.0, "reserved_mb": 41216.0, "peak_allocated_mb": 38120.0,
            "peak_reserved_mb": 41216.0, "peak_host_anon_mb": 5230.75}
    return {"timestamp": "2026-06-30T12:00:00+00:00", "request_id": "r", "commit_hash": "abc", "tag": "cli_generate",
            "total_duration_ms": sum(stage_ms) + 20, "steps": [{"name": n, "duration_ms": t} for n, t in
                                                                zip(STAGES, stage_ms)],
            "denoise_steps_ms": [{"step": i, "duration_ms": t} for i, t in enumerate(times)],
            "memory_checkpoints": {k: snap for k in ("before_forward", "after_forward", "runtime_peak")},
            "meta": {"prompt": "p", "model": "m"}}


def median_s(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a.json", Path(tmp) / "b.json"
        a.write_text(json.dumps(dump(args.steps, 50.0, 1), indent=2))
        b.write_text(json.dumps(dump(args.steps, 45.0, 2), indent=2))

        def plain():
            for p in (a, b):
                with open(p, encoding="utf-8") as f:
                    json.load(f)

        compare_perf(str(a), str(b), chart=False)  # warm imports
        load_s = median_s(plain, args.repeats)
        cmp_s = median_s(lambda: compare_perf(str(a), str(b), chart=False), args.repeats)
    print(f"two dumps of {args.steps} denoise steps, median of {args.repeats}")
    print(f"json.load of both:         {load_s * 1000:.2f} ms")
    print(f"compare_perf (no chart):   {cmp_s * 1000:.2f} ms  = {cmp_s / load_s:.1f}x json.load")
    print(f"target < 20 ms: {'met' if cmp_s < 0.020 else 'NOT met'}")


if __name__ == "__main__":
    main()
