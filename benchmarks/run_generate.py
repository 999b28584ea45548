"""run_generate's own cost, against the fake sglang (tests/fake_sglang), measured in this run.

1. Overhead per run: run_generate (pre-checks, detached supervisor, GPU lock, log follow, parse, history)
   minus launching the same fake command directly. Goal: under 100 ms.
2. CPU while sglang streams a 10,000 lines/s log: the supervisor's CPU (it copies sglang's output from a
   pipe into the log, redacting secret values on the way) plus a poller doing what
   run_generate's wait does (view() every 0.1 s), over the streaming time. Goal: under 5 % of one core.

Run: python benchmarks/run_generate.py [--runs 10] [--stream-s 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAKE = Path(__file__).resolve().parent.parent / "tests" / "fake_sglang" / "fake_sglang.py"


def setup(home: str) -> None:
    os.environ.update({"SGLANG_DIFFUSION_MCP_HOME": home, "SGLANG_DIFFUSION_MCP_SGLANG": f"{sys.executable} {FAKE}",
                       "FAKE_SGLANG_VERSION": "0.5.23", "FAKE_SGLANG_MODE": "succeed", "FAKE_SGLANG_STEP_S": "0.001",
                       "HF_HOME": os.path.join(home, "hf")})
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)


async def overhead(runs: int) -> None:
    from sglang_diffusion_mcp.tools import run_generate as rg

    args = {"model": "Qwen/Qwen-Image", "prompt": "a fox", "gpus": [0], "num_inference_steps": 4, "wait_s": 60}
    first = await rg.run_generate(**args)  # warms the version cache, like any later call in a server
    assert first.status == "succeeded", first.error
    tool, direct = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = await rg.run_generate(**args)
        tool.append(time.perf_counter() - t0)
        assert r.status == "succeeded", r.error
        argv = [sys.executable, str(FAKE), *r.argv[1:]]  # the very argv and env it ran
        env = dict(os.environ) | {k: v for k, v in r.env.items() if v is not None}
        with open(os.devnull, "wb") as null:
            t0 = time.perf_counter()
            subprocess.run(argv, env=env, stdout=null, stderr=null, check=True)
            direct.append(time.perf_counter() - t0)
    t, d = statistics.median(tool), statistics.median(direct)
    print(f"overhead: run_generate median {t * 1000:.1f} ms, direct median {d * 1000:.1f} ms, "
          f"ratio {t / d:.2f}x, overhead {(t - d) * 1000:.1f} ms per run (goal < 100 ms) "
          f"{'OK' if t - d < 0.1 else 'OVER'}")


async def streaming(stream_s: float, rate: int) -> None:
    from sglang_diffusion_mcp.tools import run_generate as rg
    from sglang_diffusion_mcp.tools.runs import results, store

    os.environ.update({"FAKE_SGLANG_MODE": "stream", "FAKE_SGLANG_LINES_PER_S": str(rate),
                       "FAKE_SGLANG_STREAM_S": str(stream_s)})
    r = await rg.run_generate(model="Qwen/Qwen-Image", prompt="a fox", gpus=[0], num_inference_steps=4, wait_s=0)
    rdir = r.run_dir
    while (store.read_record(rdir) or {}).get("status") != "running":
        await asyncio.sleep(0.01)
    cpu0, wall0, polls = time.process_time(), time.perf_counter(), 0
    cpu_poll, wall = 0.0, 0.0
    while True:  # what run_generate / get_run do while waiting, until the stream is over
        res = results.view(rdir)
        if res.status != "running" or res.phase not in ("loading", "starting"):
            break  # this last view may have closed the run (parse, history): that is not streaming cost
        polls += 1
        cpu_poll, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await asyncio.sleep(0.1)
    final = await rg.get_run(r.run_id, wait_s=60)
    rec = store.read_record(rdir)
    lines = sum(1 for _ in open(rec["log_paths"][0], "rb"))
    sup = rec.get("supervisor_cpu_while_running_s") or 0.0
    startup = (rec.get("supervisor_cpu_s") or 0.0) - sup
    pct = 100 * (cpu_poll + sup) / wall
    print(f"streaming: {lines} log lines in {wall:.2f} s ({lines / wall:.0f} lines/s), {polls} polls; "
          f"poller CPU {cpu_poll * 1000:.0f} ms + supervisor CPU while sglang ran {sup * 1000:.0f} ms = {pct:.2f} % "
          f"of one core (goal < 5 %) {'OK' if pct < 5 else 'OVER'}; supervisor start and wrap-up, once per run: "
          f"{startup * 1000:.0f} ms CPU; run {final.status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--stream-s", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        setup(home)
        asyncio.run(overhead(args.runs))
        asyncio.run(streaming(args.stream_s, args.rate))


if __name__ == "__main__":
    main()
