"""query_knowledge in-process: list, search and fetch, median over repeated calls. Target: < 20 ms median.

Run: python benchmarks/query_knowledge.py [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

from sglang_diffusion_mcp.knowledge import loader
from sglang_diffusion_mcp.knowledge.schema import KINDS
from sglang_diffusion_mcp.tools.query_knowledge import query_knowledge

QUERIES = {
    "overview": {},
    "list options": {"kind": "options"},
    "search 'layerwise offload'": {"query": "layerwise offload"},
    "fetch release 0.5.23": {"id": "sglang-0.5.23", "kind": "releases"},
    "fetch option cfg_parallel": {"id": "cfg_parallel"},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    runs = parser.parse_args().runs
    start = time.perf_counter()
    for kind in KINDS:
        loader.load(kind)
    print(f"loading every kind once: {(time.perf_counter() - start) * 1000:.0f} ms (lazy, on first use)")
    for label, args in QUERIES.items():
        try:
            query_knowledge(**args)
        except Exception as exc:  # an id that changed: report, keep going
            print(f"{label}: skipped ({exc})")
            continue
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            query_knowledge(**args)
            times.append((time.perf_counter() - t) * 1000)
        print(f"{label}: median {statistics.median(times):.2f} ms (max {max(times):.2f}); target < 20 ms")


if __name__ == "__main__":
    main()
