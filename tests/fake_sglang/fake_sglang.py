#!/usr/bin/env python3
"""A fake `sglang` for tests: the real log lines and perf-dump format of sglang 0.5.9, 0.5.10.post1, 0.5.23.

Run as `python fake_sglang.py version` or `python fake_sglang.py generate --model-path M --prompt P ...`.
Where each line comes from in the real wheels is in tests/fake_sglang/PROVENANCE.md.

Environment:
  FAKE_SGLANG_VERSION   0.5.9 | 0.5.10.post1 | 0.5.23 (default)
  FAKE_SGLANG_MODE      succeed (default) | oom | fail_exit0 | bad_flag | diffusers_fallback | print_secret |
                        hang | hang_ignore_term | spawn_child | spawn_child_setsid | spawn_child_exit |
                        gated | model_not_found | cuda | nccl | disk_full | no_perf_dump | no_output |
                        warmup_failed | stream | crash
  FAKE_SGLANG_STEP_S    seconds per denoise step (default 0.002)
  FAKE_SGLANG_ARGV_FILE write the received argv (JSON) there
  FAKE_SGLANG_CHILD_PID_FILE  spawn_child*: write the child's pid there
  FAKE_SGLANG_LINES_PER_S / FAKE_SGLANG_STREAM_S  stream: log lines per second, for how long
  FAKE_SGLANG_ECHO_ENV  comma-separated env names whose values it prints early (any mode), each split over two
                        writes with a pause between, on stdout and inside a tqdm-style \r redraw on stderr
  FAKE_SGLANG_LONG_LINE N: print an N-character line, a long server_args value and (crash) a long error line
  FAKE_SGLANG_ENV_FILE  write the environment it received (JSON) there
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

CYAN, GREEN, YELLOW, RED, RESET = "\033[1;36m", "\033[92m", "\033[93m", "\033[91m", "\033[0;0m"
VERSION = os.environ.get("FAKE_SGLANG_VERSION", "0.5.23")
MODE = os.environ.get("FAKE_SGLANG_MODE", "succeed")
STEP_S = float(os.environ.get("FAKE_SGLANG_STEP_S", "0.002"))
OLD = VERSION in ("0.5.9",)  # argparse.parse_args: usage + exit 2 on unknown flags
NEW_WARMUP = VERSION not in ("0.5.9", "0.5.10.post1")  # --warmup-mode from 0.5.14

VALUE_FLAGS = {"--model-path", "--prompt", "--width", "--height", "--num-frames", "--num-inference-steps", "--seed",
               "--num-gpus", "--perf-dump-path", "--output-path", "--output-file-name", "--log-level", "--backend",
               "--guidance-scale", "--tp-size", "--sp-degree", "--ulysses-degree", "--ring-degree",
               "--attention-backend", "--negative-prompt", "--dit-cpu-offload", "--text-encoder-cpu-offload",
               "--vae-cpu-offload", "--warmup-steps"}
SWITCH_FLAGS = {"--save-output", "--no-save-output", "--profile"}
# sglang's StoreBoolean flags: bare means true, or an explicit true/false follows
BOOL_FLAGS = {"--enable-torch-compile", "--enable-cfg-parallel", "--use-fsdp-inference", "--dit-layerwise-offload",
              "--image-encoder-cpu-offload", "--pin-cpu-memory"}
LIST_FLAGS = {"--layerwise-offload-components", "--component-residency"}  # nargs="+"
VALUE_FLAGS |= {"--performance-mode", "--dit-offload-prefetch-size", "--image-path"}
if NEW_WARMUP:
    VALUE_FLAGS |= {"--warmup-mode"}
else:
    VALUE_FLAGS |= {"--warmup-resolutions"}


def log(msg: str, level: str = "INFO") -> None:
    line = f"[{datetime.now().strftime('%m-%d %H:%M:%S')}] {msg}"
    if level == "WARNING":
        line = f"{YELLOW}{line}{RESET}"
    elif level == "ERROR":
        line = f"{RED}{line}{RESET}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def parse(argv: list[str]) -> tuple[dict, list[str]]:
    args: dict = {}
    unknown: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        name, eq, val = a.partition("=")
        if name == "--warmup" and not NEW_WARMUP:  # nargs="?" with a bool value
            if not eq and i + 1 < len(argv) and argv[i + 1].lower() in ("true", "false"):
                val, i = argv[i + 1], i + 1
            args["warmup"] = (val or "true").lower() == "true"
        elif name in VALUE_FLAGS:
            if not eq:
                i += 1
                val = argv[i] if i < len(argv) else ""
            args[name[2:].replace("-", "_")] = val
        elif name in SWITCH_FLAGS:
            args[name[2:].replace("-", "_")] = True
        elif name in BOOL_FLAGS:
            if not eq and i + 1 < len(argv) and argv[i + 1].lower() in ("true", "false"):
                val, i = argv[i + 1], i + 1
            args[name[2:].replace("-", "_")] = (val or "true").lower() == "true"
        elif name in LIST_FLAGS:
            values = [val] if eq else []
            while i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                values.append(argv[i + 1])
                i += 1
            args[name[2:].replace("-", "_")] = values
        else:
            unknown.append(a)
        i += 1
    return args, unknown


def argparse_error(unknown: list[str]) -> None:
    if OLD:  # 0.5.9: parser.parse_args -> argparse prints usage and exits 2
        sys.stderr.write("usage: sglang [-h] [--config CONFIG] [--perf-dump-path PERF_DUMP_PATH]\n"
                         "              [--model-path MODEL_PATH] ...\n"
                         f"sglang: error: unrecognized arguments: {' '.join(unknown)}\n")
        sys.exit(2)
    # 0.5.10+: ServerArgs.from_cli_args raises SystemExit("error: unrecognized arguments: ...") -> exit 1
    sys.stderr.write(f"error: unrecognized arguments: {' '.join(unknown)}\n")
    sys.exit(1)


def traceback_and_exit(lines: list[str], code: int = 1) -> None:
    sys.stderr.write("Traceback (most recent call last):\n"
                     '  File "/usr/local/lib/python3.12/dist-packages/sglang/cli/main.py", line 42, in main\n'
                     "    generate(args, extra_argv)\n")
    for line in lines:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
    sys.exit(code)


def tqdm(total: int, step_s: float, desc: str = "", unit: str = "it") -> None:
    start = time.monotonic()
    for n in range(total + 1):
        pct = int(100 * n / total) if total else 100
        bar = ("█" * (pct // 10)).ljust(10)
        elapsed = time.monotonic() - start
        rate = f"{n / elapsed:.2f}{unit}/s" if elapsed > 0 and n else f"?{unit}/s"
        sys.stderr.write(f"\r{desc}{pct:3d}%|{bar}| {n}/{total} [00:0{int(elapsed) % 10}<00:00, {rate}]")
        sys.stderr.flush()
        if n < total:
            time.sleep(step_s)
    sys.stderr.write("\n")
    sys.stderr.flush()


def spawn_child(setsid: bool) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(1)"],
                             start_new_session=setsid)
    path = os.environ.get("FAKE_SGLANG_CHILD_PID_FILE")
    if path:
        with open(path, "w") as f:
            f.write(str(child.pid))


def echo_env() -> None:
    """Print secrets the way a leaky library would, split across writes (the supervisor reads in between)."""
    for name in filter(None, os.environ.get("FAKE_SGLANG_ECHO_ENV", "").split(",")):
        value = os.environ.get(name, "")
        half = len(value) // 2
        sys.stdout.write(f"[{datetime.now().strftime('%m-%d %H:%M:%S')}] {name} is {value[:half]}")
        sys.stdout.flush()
        time.sleep(0.12)  # longer than the supervisor's batching: the halves arrive in separate reads
        sys.stdout.write(f"{value[half:]} (echoed)\n")
        sys.stdout.flush()
        sys.stderr.write(f"\r 10%|█         | 1/10 {value[:half]}")
        sys.stderr.flush()
        time.sleep(0.12)
        sys.stderr.write(f"{value[half:]}\r 20%|██        | 2/10\n")
        sys.stderr.flush()


def hang() -> None:
    if MODE == "hang_ignore_term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.5)


def server_args(args: dict) -> dict:
    sa = {"model_path": args.get("model_path"), "backend": args.get("backend", "auto"),
          "num_gpus": int(args.get("num_gpus") or 1), "tp_size": 1, "sp_degree": 1, "ulysses_degree": 1,
          "ring_degree": 1, "attention_backend": args.get("attention_backend"),
          "enable_torch_compile": bool(args.get("enable_torch_compile")), "dit_cpu_offload": False,
          "text_encoder_cpu_offload": True, "vae_cpu_offload": False,
          "log_level": args.get("log_level", "info"), "output_path": args.get("output_path")}
    if NEW_WARMUP:
        sa["warmup_mode"] = args.get("warmup_mode", "off")
    else:
        sa["warmup"] = bool(args.get("warmup"))
    return sa


def perf_report(path: str, args: dict, stages: dict, steps: list[float], total_ms: float) -> None:
    report = {
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "request_id": "mocked_fake_id_for_offline_generate",
        "commit_hash": "N/A",
        "tag": "cli_generate",
        "total_duration_ms": total_ms,
        "steps": [{"name": k, "duration_ms": v} for k, v in stages.items()],
        "denoise_steps_ms": [{"step": i, "duration_ms": v} for i, v in enumerate(steps)],
        "memory_checkpoints": {"after_DenoisingStage": {"allocated_mb": 24576.0, "reserved_mb": 30720.0,
                                                        "peak_allocated_mb": 28672.0, "peak_reserved_mb": 30720.0}
                               | ({"peak_host_anon_mb": 5120.0} if VERSION == "0.5.23" else {})},
        "meta": {"prompt": args.get("prompt"), "model": args.get("model_path")},
    }
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if VERSION == "0.5.23":  # 0.5.23 writes a temp file and renames it
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        os.replace(tmp, path)
    else:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    log(f"Metrics dumped to: {CYAN}{path}{RESET}")


def vram_analysis(debug: bool) -> None:
    if VERSION == "0.5.9":  # info level
        log("Peak GPU memory: 30.00 GB, Peak allocated: 28.00 GB, Memory pool overhead: 2.00 GB (6.7%), "
            "Remaining GPU memory at peak: 49.19 GB. Components that could stay resident (based on the last "
            "request workload): ['text_encoder']. Related offload server args to disable: --text-encoder-cpu-offload")
    elif VERSION == "0.5.10.post1" and debug:
        log("Peak GPU memory: 30.00 GB, Peak allocated: 28.00 GB, Memory pool overhead: 2.00 GB (6.7%), "
            "Remaining GPU memory at peak: 49.19 GB. Components that could stay resident (based on the last "
            "request workload): ['text_encoder']. Related offload server args to disable: --text-encoder-cpu-offload")
    elif debug:
        log("GPU memory: peak=30.00 GB, allocated=28.00 GB, pool=2.00 GB (6.7%), headroom=49.19 GB. Components that "
            "can remain on GPU: ['text_encoder']. Make it explicit with --component-residency <name>=resident.")


def write_trace(args: dict) -> None:
    """Where each release puts torch profiler traces (profiler setup in the wheels): 0.5.9-0.5.10.post1 read
    SGLANG_TORCH_PROFILER_DIR, 0.5.11+ SGLANG_DIFFUSION_TORCH_PROFILER_DIR first; else ./logs."""
    names = ("SGLANG_TORCH_PROFILER_DIR",) if VERSION in ("0.5.9", "0.5.10.post1") else (
        "SGLANG_DIFFUSION_TORCH_PROFILER_DIR", "SGLANG_TORCH_PROFILER_DIR")
    folder = next((os.environ[n] for n in names if os.environ.get(n)), "./logs")
    os.makedirs(folder, exist_ok=True)
    path = os.path.abspath(os.path.join(folder, "fake-request-5_steps-global-rank0.trace.json.gz"))
    with gzip.open(path, "wt") as f:
        json.dump({"traceEvents": [{"ph": "X", "cat": "kernel", "name": "flash_fwd_kernel", "ts": 0, "dur": 10,
                                    "pid": 0, "tid": 7}]}, f)
    log(f"Saved profiler traces to: {path}")


def generate(argv: list[str]) -> None:
    if os.environ.get("FAKE_SGLANG_ARGV_FILE"):
        with open(os.environ["FAKE_SGLANG_ARGV_FILE"], "w") as f:
            json.dump(["generate", *argv], f)
    args, unknown = parse(argv)
    if MODE == "bad_flag":
        unknown = unknown or ["--warmup"]
    if unknown:
        argparse_error(unknown)
    debug = args.get("log_level", "info").lower() == "debug"
    warmup = (args.get("warmup_mode", "off") != "off") if NEW_WARMUP else bool(args.get("warmup"))
    steps_n = int(args.get("num_inference_steps") or 8)
    width, height = int(args.get("width") or 1024), int(args.get("height") or 1024)
    frames = int(args.get("num_frames") or 1)
    long_n = int(os.environ.get("FAKE_SGLANG_LONG_LINE") or 0)
    if os.environ.get("FAKE_SGLANG_ENV_FILE"):
        with open(os.environ["FAKE_SGLANG_ENV_FILE"], "w") as f:
            json.dump(dict(os.environ), f)
    sa = server_args(args) | ({"long_value": "v" * long_n} if long_n else {})
    log(f"server_args: {json.dumps(sa, ensure_ascii=False)}")
    log("Local mode: True")
    echo_env()
    if long_n:
        log("Very long line: " + "x" * long_n)
    if MODE == "print_secret":
        log(f"Using Hugging Face token {os.environ.get('HF_TOKEN', '')} for downloads")
    if MODE == "gated":
        log(f"Downloading model snapshot from HF Hub for {args.get('model_path')} (attempt 1/5)...")
        traceback_and_exit([
            "huggingface_hub.errors.GatedRepoError: 403 Client Error. (Request ID: Root=1-abc)",
            "",
            f"Cannot access gated repo for url https://huggingface.co/api/models/{args.get('model_path')}/revision/main.",
            f"Access to model {args.get('model_path')} is restricted. You must have access to it and be authenticated "
            "to access it. Please log in.",
            "ValueError: Model or revision not found at {0}. Please check the model ID or ensure you have access to "
            "the repository. Error: 403 Client Error.".format(args.get("model_path"))])
    if MODE == "model_not_found":
        traceback_and_exit([
            f"ValueError: Model or revision not found at {args.get('model_path')}. Please check the model ID or "
            "ensure you have access to the repository. Error: 404 Client Error. Repository Not Found for url: "
            f"https://huggingface.co/api/models/{args.get('model_path')}/revision/main."])
    if MODE == "diffusers_fallback":
        log(f"Pipeline class 'FancyNewPipeline' specified in '{args.get('model_path')}' has no native sglang "
            "support. Falling back to diffusers backend.", "WARNING")
    log("Loading pipeline modules...")
    log("Loading required components: ['text_encoder', 'tokenizer', 'vae', 'transformer', 'scheduler']")
    log("Loading transformer from /root/.cache/huggingface/hub/models--x/snapshots/abc/transformer. avail mem: 79.19 GB")
    log("Loaded transformer: FluxTransformer2DModel (native version). model size: 22.17 GB, consumed GPU mem: "
        "22.40 GB, avail GPU mem: 56.79 GB")
    log("Worker 0: Initialized device, model, and distributed environment.")
    if MODE in ("spawn_child", "spawn_child_setsid", "spawn_child_exit"):
        spawn_child(setsid=MODE == "spawn_child_setsid")
        if MODE != "spawn_child_exit":
            hang()
    if MODE in ("hang", "hang_ignore_term"):
        hang()
    if MODE == "stream":
        rate = float(os.environ.get("FAKE_SGLANG_LINES_PER_S", "10000"))
        until = time.monotonic() + float(os.environ.get("FAKE_SGLANG_STREAM_S", "2"))
        n, start = 0, time.monotonic()
        while time.monotonic() < until:
            n += 1
            log(f"Loading weights shard {n}: model.layers.{n % 57}.attn.to_q.weight bf16 [3072, 3072]")
            behind = start + n / rate - time.monotonic()
            if behind > 0:
                time.sleep(behind)
    if MODE == "cuda":
        traceback_and_exit(["RuntimeError: CUDA error: an illegal memory access was encountered",
                            "CUDA kernel errors might be asynchronously reported at some other API call."])
    if MODE == "nccl":
        traceback_and_exit(["torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/"
                            "NCCLUtils.hpp:275, unhandled cuda error (run with NCCL_DEBUG=INFO for details), "
                            "NCCL version 2.21.5", "ncclUnhandledCudaError: Call to CUDA function failed."])
    if MODE == "disk_full":
        traceback_and_exit(["OSError: [Errno 28] No space left on device"])
    if MODE == "crash":
        traceback_and_exit([f"KeyError: 'transformer_blocks.0.attn.norm_q.weight{'q' * long_n}'"], code=3)

    warmup_failed = False
    if warmup:
        if NEW_WARMUP:
            tqdm(1, STEP_S, desc="Warmup requests: ", unit="req")
            if MODE == "warmup_failed":
                log(f"warmup req {width}x{height} processing failed: CUDA error: operation not permitted when stream "
                    "is capturing", "WARNING")
                warmup_failed = True
            else:
                log("The server is fired up and ready to roll!")
        else:
            log("Processing warmup req... (1/1)")
            tqdm(1, STEP_S)
            if MODE == "warmup_failed":
                log("Warmup req (1/1) processing failed")
                warmup_failed = True
            else:
                log(f"Warmup req (1/1) processed in {GREEN}0.85{RESET} seconds")

    log(f"""Sampling params:
                       width: {width}
                      height: {height}
                  num_frames: {frames}
                      prompt: {args.get('prompt')}
                        seed: {args.get('seed', 42)}
                 infer_steps: {steps_n}
        """)
    stage_names = ["InputValidationStage", "TextEncodingStage", "TimestepPreparationStage", "LatentPreparationStage",
                   "DenoisingStage", "DecodingStage"]
    log("Running pipeline stages: ['input_validation_stage', 'text_encoding_stage', 'timestep_preparation_stage', "
        "'latent_preparation_stage', 'denoising_stage', 'decoding_stage']")
    stages: dict[str, float] = {}
    steps: list[float] = []
    t_request = time.monotonic()
    for stage in stage_names:
        left = " (56.79 GB left)" if debug else ""
        log(f"[{stage}] started...{left}")
        t0 = time.monotonic()
        if stage == "DenoisingStage":
            if MODE == "oom":
                log(f"[DenoisingStage] Error during execution after {1000 * (time.monotonic() - t0):.4f} ms: CUDA "
                    "out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
                    "1.25 GiB is free.", "ERROR")
                log("Generation failed: CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity "
                    "of 79.19 GiB of which 1.25 GiB is free.", "ERROR")
                sys.stderr.write("Traceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory. "
                                 "Tried to allocate 20.00 GiB.\n")
                sys.exit(0)  # the generator catches it; the CLI exits 0
            if MODE == "fail_exit0":
                log("Generation failed: Expected all tensors to be on the same device", "ERROR")
                sys.exit(0)
            start = time.monotonic()
            tqdm(steps_n, STEP_S)
            steps = [1000 * (time.monotonic() - start) / steps_n] * steps_n
        dur = time.monotonic() - t0
        stages[stage] = dur * 1000
        log(f"[{stage}] finished in {dur:.4f} seconds")
    vram_analysis(debug)
    if args.get("profile"):
        write_trace(args)
    total_ms = 1000 * (time.monotonic() - t_request)
    if MODE != "no_output" and args.get("output_path"):
        name = args.get("output_file_name") or "output"
        ext = ".mp4" if frames > 1 else ".png"
        out = os.path.join(args["output_path"], name + ext)
        os.makedirs(args["output_path"], exist_ok=True)
        with open(out, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" if ext == ".png" else b"\x00\x00\x00\x18ftypmp42")
        log(f"Output saved to {CYAN}{out}{RESET}")
    log(f"Pixel data generated successfully in {GREEN}{total_ms / 1000:.2f}{RESET} seconds")
    if warmup:
        if warmup_failed and VERSION == "0.5.23":
            log(f"Warmup failed, so this request ran cold: {total_ms / 1000:.2f} seconds includes first-use cost "
                "and is not a warmed-up timing", "WARNING")
        else:
            log(f"Warmed-up request processed in {GREEN}{total_ms / 1000:.2f}{RESET} seconds (with warmup excluded)")
    log("Memory usage - Max peak: 30720.00 MB, Avg peak: 30720.00 MB")
    if MODE != "no_perf_dump" and args.get("perf_dump_path"):
        perf_report(args["perf_dump_path"], args, stages, steps, total_ms)


def main() -> int:
    argv = sys.argv[1:]
    if not argv:
        sys.stderr.write("usage: sglang [-h] {serve,generate,version} ...\n")
        return 2
    if argv[0] == "version":
        print(f"sglang version: {VERSION}")
        print("git revision: 1a2b3c4")
        return 0
    if argv[0] == "generate":
        generate(argv[1:])
        return 0
    sys.stderr.write(f"sglang: error: argument subcommand: invalid choice: '{argv[0]}'\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
