"""plan_kernel_handoff's trace summary on a large torch profiler trace, against a plain streaming ijson parse.

Generates an uncompressed Chrome trace of --size-mb (default 200 MB) in Kineto's shape (cpu_op with Input Dims,
cudaLaunchKernel, kernel/gpu_memcpy events with External id and correlation, ac2g flows), then times, each in a
fresh subprocess with its peak RSS:
  baseline: `for e in ijson.items(f, "traceEvents.item")` (the cheapest streaming parse of the same file)
  summary:  summarize_trace + findings, as plan_kernel_handoff runs them
Targets: summary under 10 s, peak RSS well under the file size. Run: python benchmarks/kernel_handoff.py [--size-mb 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

KERNELS = [
    ("aten::_flash_attention_forward", "void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90"
     "<flash::CollectiveMainloopFwdSm90<2, cute::tuple<cute::C<1>, cute::C<1>, cute::C<1> >, 128> > > >(Params)", 900.0),
    ("aten::addmm", "nvjet_tst_192x192_64x4_1x2_h_bz_coopB_NNT", 300.0),
    ("aten::addmm", "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64_warpgroupsize2x1x1_cublas", 250.0),
    ("aten::rms_norm", "triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_0", 40.0),
    ("aten::add", "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, "
     "std::array<char*, 3ul> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, std::array<char*, 3ul>)", 20.0),
    ("c10d::alltoall_base_", "ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)", 200.0),
    ("aten::copy_", "Memcpy HtoD (Pinned -> Device)", 500.0),
]


def write_trace(path: Path, size_mb: int) -> int:
    """Stream events to disk until the file reaches size_mb; returns the event count."""
    target = size_mb * 1024 * 1024
    header = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3", "computeMajor": 9,
                                                        "computeMinor": 0}],
              "distributedInfo": {"backend": "nccl", "rank": 0, "world_size": 1}}
    ext, corr, cpu_ts, gpu_ts, events, step = 1, 1, 1.0e6, 1.0e6 + 500, 0, 0
    with path.open("w") as f:
        f.write(json.dumps(header)[:-1] + ', "traceEvents": [\n')
        first = True
        while f.tell() < target:
            if ext % 5000 == 1:
                step += 1
                batch = [{"ph": "X", "cat": "user_annotation", "name": f"ProfilerStep#{step}", "pid": 1, "tid": 1,
                          "ts": cpu_ts, "dur": 1.0e5, "args": {"External id": ext}}]
            else:
                batch = []
            op, kernel, dur = KERNELS[ext % len(KERNELS)]
            cat = "gpu_memcpy" if kernel.startswith("Memcpy") else "kernel"
            dims = [[1, 32760, 12, 128], [1, 32760, 12, 128], [1, 32760, 12, 128], [], []]
            batch += [
                {"ph": "X", "cat": "cpu_op", "name": op, "pid": 1, "tid": 1, "ts": cpu_ts, "dur": 12.0,
                 "args": {"External id": ext, "Record function id": 0, "Ev Idx": ext, "Input Dims": dims,
                          "Input type": ["c10::BFloat16"] * 3 + ["", "Scalar"],
                          "Input Strides": [[], [], [], [], []], "Concrete Inputs": ["", "", "", "", "0.1"]}},
                {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": cpu_ts + 3,
                 "dur": 5.0, "args": {"External id": ext, "cbid": 211, "correlation": corr}},
                {"ph": "s", "id": corr, "pid": 1, "tid": 1, "ts": cpu_ts + 3, "cat": "ac2g", "name": "ac2g"},
                {"ph": "X", "cat": cat, "name": kernel, "pid": 0, "tid": 7, "ts": gpu_ts, "dur": dur,
                 "args": {"External id": ext, "queued": 0, "device": 0, "context": 1, "stream": 7, "correlation": corr,
                          "registers per thread": 168, "shared memory": 0, "grid": [132, 1, 1], "block": [384, 1, 1]}},
                {"ph": "f", "id": corr, "pid": 0, "tid": 7, "ts": gpu_ts, "cat": "ac2g", "name": "ac2g", "bp": "e"},
            ]
            for event in batch:
                f.write(("" if first else ",\n") + json.dumps(event))
                first = False
            events += len(batch)
            ext, corr, cpu_ts, gpu_ts = ext + 1, corr + 1, cpu_ts + 15, gpu_ts + dur + 3
        f.write('\n], "traceName": "bench", "displayTimeUnit": "ms"}\n')
    return events


BASELINE = """
import ijson, json, resource, sys, time
t = time.perf_counter(); n = 0
with open(sys.argv[1], "rb") as f:
    for _ in ijson.items(f, "traceEvents.item", use_float=True):
        n += 1
print(json.dumps({"s": time.perf_counter() - t, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "n": n}))
"""

SUMMARY = """
import json, resource, sys, time
from sglang_diffusion_mcp.tools.kernel_handoff.findings import build_findings
from sglang_diffusion_mcp.tools.kernel_handoff.trace_summary import summarize_trace
t = time.perf_counter()
s = summarize_trace(sys.argv[1]); f = build_findings(None, s)
print(json.dumps({"s": time.perf_counter() - t, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "n": s.events, "dominant": f.dominant_kind, "hot_dims": f.hotspot.input_dims[0]}))
"""

IDLE = """
import json, resource
import ijson
from sglang_diffusion_mcp.tools.kernel_handoff import trace_summary
print(json.dumps({"s": 0, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def run(code: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--keep", help="write the trace here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "bench.trace.json"
        events = write_trace(path, args.size_mb)
        size_mb = os.path.getsize(path) / 2**20
        idle = run(IDLE, path)
        base = run(BASELINE, path)
        summ = run(SUMMARY, path)
    assert base["n"] == summ["n"] == events, (base, summ, events)
    rss = lambda r: r["rss_kb"] / 1024  # noqa: E731  (Linux ru_maxrss is in KiB)
    print(f"trace: {size_mb:.0f} MiB uncompressed, {events:,} events; python + imports alone: {rss(idle):.0f} MiB RSS")
    print(f"baseline ijson.items parse: {base['s']:.2f} s, peak RSS {rss(base):.0f} MiB")
    print(f"summarize_trace + findings: {summ['s']:.2f} s, peak RSS {rss(summ):.0f} MiB "
          f"(dominant {summ['dominant']}, hotspot dims {summ['hot_dims']})")
    print(f"time ratio summary/baseline: {summ['s'] / base['s']:.2f}x; "
          f"peak RSS / file size: {rss(summ) / size_mb:.2%}")
    ok_time, ok_mem = summ["s"] < 10.0, rss(summ) < 0.25 * size_mb
    print(f"targets: under 10 s {'PASS' if ok_time else 'FAIL'}; RSS under 25 % of the file {'PASS' if ok_mem else 'FAIL'}")
    sys.exit(0 if ok_time and ok_mem else 1)


if __name__ == "__main__":
    main()
