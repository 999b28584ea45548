"""recommend_flags for an 8-GPU request (plan search included), against a plain knowledge-base lookup.

Target: median under 50 ms in-process. Run: python benchmarks/recommend_flags.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

from sglang_diffusion_mcp.knowledge import loader
from sglang_diffusion_mcp.tools.check_command import check_command
from sglang_diffusion_mcp.tools.recommend_flags import recommend_flags

REQUEST = dict(model="Wan-AI/Wan2.2-T2V-A14B-Diffusers", hardware="8xH100", sglang_version="0.5.23")


def median_ms(fn, runs: int) -> tuple[float, float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[len(times) // 10], times[-1 - len(times) // 10]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    start = time.perf_counter()
    result = recommend_flags(**REQUEST)  # first call loads the knowledge base
    first = (time.perf_counter() - start) * 1000
    lookup = median_ms(lambda: (loader.get("models", "wan2.2-t2v-a14b"), loader.get("gpus", "h100-sxm")), runs)
    rec = median_ms(lambda: recommend_flags(**REQUEST), runs)
    chk = median_ms(lambda: check_command(argv=result.argv, hardware=REQUEST["hardware"],
                                          sglang_version=REQUEST["sglang_version"]), runs)
    print(f"request: {REQUEST}")
    print(f"first call (loads the knowledge base): {first:.0f} ms")
    print(f"plain knowledge-base lookup: median {lookup[0] * 1000:.1f} us")
    print(f"recommend_flags: median {rec[0]:.1f} ms (p10 {rec[1]:.1f}, p90 {rec[2]:.1f}); target < 50 ms; "
          f"{rec[0] / lookup[0]:.0f}x the lookup")
    print(f"check_command on its output: median {chk[0]:.1f} ms")


if __name__ == "__main__":
    main()
