"""parse_vram_log throughput on a large generated log, against a plain read of the same file.

Target: >= 100 MB/s with flat memory on a 500 MB log. Run: python benchmarks/vram_log.py [--size-mb 500]
Memory is the growth of this process's peak RSS during the parse (the plain read runs first).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from sglang_diffusion_mcp.tools.vram_log import BLOCK, parse_vram_log

STAGES = ["InputValidationStage", "TextEncodingStage", "TimestepPreparationStage", "LatentPreparationStage",
          "DenoisingStage", "DecodingStage"]


def request_block(i: int) -> str:
    """One debug-level request as 0.5.23 logs it, plus tqdm noise and unrelated lines."""
    lines = []
    for stage in STAGES:
        lines.append(f"[06-30 12:{i % 60:02d}:01] [{stage}] started... (38.94 GB left)")
        lines.append(f"[06-30 12:{i % 60:02d}:02] [{stage}] finished in 0.1234 seconds")
    lines += [f"\r{p:3d}%|{'#' * (p // 10):<10}| {p // 2}/50 [00:0{p // 20}<00:05,  9.1it/s]" for p in range(0, 101, 2)]
    lines += [f"[06-30 12:{i % 60:02d}:03] Some unrelated library message number {k} " + "z" * 60 for k in range(200)]
    lines.append(f"[06-30 12:{i % 60:02d}:04] GPU memory: peak=40.25 GB, allocated=37.22 GB, pool=3.03 GB (7.5%), "
                 "headroom=38.94 GB. Components that can remain on GPU: ['vae', 'text_encoder']. Make it explicit "
                 "with --component-residency <name>=resident.")
    return "\n".join(lines) + "\n"


def generate(path: Path, size_mb: int) -> int:
    target = size_mb * 1024 * 1024
    with open(path, "w", encoding="utf-8") as f:
        i = 0
        chunk = "".join(request_block(k) for k in range(50))
        while f.tell() < target:
            f.write(chunk)
            i += 50
        f.write("[06-30 12:59:59] Memory usage - Max peak: 41216.00 MB, Avg peak: 41216.00 MB\n")
    return path.stat().st_size


def plain_read(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(BLOCK):
            pass


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.log"
        size = generate(path, args.size_mb)
        mb = size / 1024 / 1024
        plain_read(path)  # warm the page cache so both timings read from memory
        t = time.perf_counter()
        plain_read(path)
        read_s = time.perf_counter() - t
        parse_vram_log(text="warm up")
        before = rss_mb()
        t = time.perf_counter()
        result = parse_vram_log(log_path=str(path))
        parse_s = time.perf_counter() - t
        growth = rss_mb() - before
    print(f"log: {mb:.0f} MB, {result.lines_scanned} lines, {result.requests_total} requests")
    print(f"plain read:     {read_s:.3f} s  ({mb / read_s:.0f} MB/s)")
    print(f"parse_vram_log: {parse_s:.3f} s  ({mb / parse_s:.0f} MB/s)  = {parse_s / read_s:.1f}x the plain read")
    print(f"peak RSS growth during parse: {growth:.1f} MB ({growth / mb * 100:.1f}% of the file)")
    print(f"target >= 100 MB/s: {'met' if mb / parse_s >= 100 else 'NOT met'}; "
          f"flat memory (< 64 MB growth): {'met' if growth < 64 else 'NOT met'}")


if __name__ == "__main__":
    main()
