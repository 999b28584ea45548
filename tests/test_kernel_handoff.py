"""plan_kernel_handoff: trace streaming, kernel classification, findings, ordered next steps and the brief."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from sglang_diffusion_mcp.tools.kernel_handoff.classify import classify_kernel
from sglang_diffusion_mcp.tools.kernel_handoff.trace_summary import summarize_trace
from sglang_diffusion_mcp.tools.plan_kernel_handoff import plan_kernel_handoff
from sglang_diffusion_mcp.tools.problems import ToolInputError

TRACES = Path(__file__).parent / "fixtures" / "traces"
PROFILED = str(TRACES / "wan-profiled.json")
BASELINE = str(TRACES / "wan-baseline.json")
ORDER = {"measure": 0, "flag": 1, "fast_path": 2, "kernel_work": 3}


def plan(trace: str, **kw):
    kw.setdefault("perf_dump", PROFILED)
    kw.setdefault("baseline_perf_dump", BASELINE)
    return plan_kernel_handoff(trace=str(TRACES / trace), **kw)


# ------------------------------------------------------------------ classification

@pytest.mark.parametrize("name,cat,kind,family", [
    ("void flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, cutlass::bfloat16_t>>",
     "kernel", "attention", "fa2"),
    ("void flash::flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128>>", "kernel", "attention", "fa2"),
    ("void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90<...>>>(Params)", "kernel",
     "attention", "fa3"),
    ("flash_fwd_hdim128_bf16_sm90", "kernel", "attention", "fa3"),
    ("void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<128>>", "kernel", "attention",
     "sdpa_flash"),
    ("fmha_cutlassF_bf16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<...>::Params)", "kernel",
     "attention", "sdpa_efficient"),
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64_cublas", "kernel", "gemm", "cublas"),
    ("nvjet_tst_192x192_64x4_1x2_h_bz_coopB_NNT", "kernel", "gemm", "nvjet"),
    ("ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_64x3_tn", "kernel", "gemm", "cublas"),
    ("void cutlass::Kernel<cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_32x6_tn_align8>", "kernel", "gemm",
     "cublas"),
    ("triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_0", "kernel", "norm_elementwise", "inductor_fused"),
    ("triton_poi_fused_add_mul_0", "kernel", "norm_elementwise", "inductor_fused"),
    ("_layer_norm_fwd_1pass_kernel", "kernel", "norm_elementwise", "layernorm"),
    ("void rms_norm_kernel<c10::BFloat16>(...)", "kernel", "norm_elementwise", "rmsnorm"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>>", "kernel",
     "norm_elementwise", "elementwise"),
    ("ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)", "kernel", "communication", "all_to_all"),
    ("ncclDevKernel_AllToAll_RING", "kernel", "communication", "all_to_all"),
    ("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "kernel", "communication",
     "all_reduce"),
    ("Memcpy HtoD (Pinned -> Device)", "gpu_memcpy", "host_device_copy", "memcpy_htod"),
    ("Memcpy DtoH (Device -> Pageable)", "gpu_memcpy", "host_device_copy", "memcpy_dtoh"),
    ("Memcpy DtoD (Device -> Device)", "gpu_memcpy", "other", "device_copy"),
    ("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc", "kernel", "other", "conv"),
    ("some_custom_kernel", "kernel", "other", "other"),
])
def test_classify_real_kernel_names(name, cat, kind, family):
    got = classify_kernel(name, cat)
    assert (got.kind, got.family) == (kind, family)


def test_sglang_own_kernels_are_marked():
    assert classify_kernel("void fused_inplace_qknorm_rope_kernel<128, __nv_bfloat16>(...)").sglang_kernel
    assert not classify_kernel("nvjet_tst_192x192_64x4_1x2_h_bz_coopB_NNT").sglang_kernel


# ------------------------------------------------------------------ findings per scenario

@pytest.mark.parametrize("trace,dominant,family", [
    ("fa3_gemm_h100.trace.json.gz", "gemm", "nvjet"),
    ("sdpa_h100.trace.json", "attention", "sdpa_flash"),
    ("fa2_a100.trace.json", "attention", "fa2"),
    ("sdpa_efficient_a100.trace.json.gz", "attention", "sdpa_efficient"),
    ("offload_h100.trace.json.gz", "host_device_copy", "memcpy_htod"),
    ("comm_4xh100.trace.json.gz", "communication", "all_to_all"),
    ("norms_h100.trace.json.gz", "norm_elementwise", "inductor_fused"),
    ("idle_h100.trace.json.gz", "idle", None),
])
def test_each_kind_dominates_its_scenario(trace, dominant, family):
    result = plan(trace)
    tf = result.findings.trace
    assert result.findings.dominant_kind == dominant
    assert tf.kinds[0].kind == dominant and tf.kinds[0].top_family == family
    assert tf.devices == 1 and tf.profiler_steps == 2 and tf.gpu_events > 0
    assert tf.gpu_name and tf.compute_capability in ("9.0", "8.0")
    assert {k.kind for k in tf.kinds} >= {"attention", "gemm", "norm_elementwise", "communication",
                                          "host_device_copy", "idle", "other"}


def test_top_kernels_carry_shapes_and_dtypes_of_the_launching_op():
    result = plan("sdpa_h100.trace.json")
    hot = result.hotspot
    assert hot.family == "sdpa_flash" and hot.op == "aten::_flash_attention_forward"
    assert hot.input_dims[0] == [1, 32760, 12, 128]
    assert hot.input_types[:3] == ["c10::BFloat16"] * 3
    assert result.findings.trace.top_kernels[0].name.startswith("void pytorch_flash::flash_fwd_kernel")


def test_idle_gaps_are_time_without_any_kernel():
    summary = summarize_trace(TRACES / "idle_h100.trace.json.gz")
    assert summary.busy_us < summary.window_us
    assert summary.kind_us["idle"] == pytest.approx(summary.window_us - summary.busy_us)
    kernel_us = sum(k.total_us for k in summary.kernels.values())
    assert summary.busy_us == pytest.approx(kernel_us)  # one stream, no overlap


def test_gzipped_and_plain_traces_read_the_same(tmp_path):
    plain = TRACES / "sdpa_h100.trace.json"
    gz = tmp_path / "sdpa_h100.trace.json.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a = plan_kernel_handoff(perf_dump=BASELINE, trace=str(plain)).findings.trace
    b = plan_kernel_handoff(perf_dump=BASELINE, trace=str(gz)).findings.trace
    assert a.model_dump(exclude={"path"}) == b.model_dump(exclude={"path"})


def test_kernels_before_their_cpu_ops_still_get_shapes(tmp_path):
    doc = json.loads((TRACES / "sdpa_h100.trace.json").read_text())
    doc["traceEvents"].sort(key=lambda e: e.get("cat") != "kernel")  # all GPU events first
    path = tmp_path / "reordered.trace.json"
    path.write_text(json.dumps(doc))
    hot = plan_kernel_handoff(perf_dump=BASELINE, trace=str(path)).hotspot
    assert hot.input_dims[0] == [1, 32760, 12, 128]


def test_chrome_array_form_is_read(tmp_path):
    events = json.loads((TRACES / "sdpa_h100.trace.json").read_text())["traceEvents"]
    path = tmp_path / "array.json"
    path.write_text(json.dumps(events))
    assert plan_kernel_handoff(perf_dump=BASELINE, trace=str(path)).findings.dominant_kind == "attention"


# ------------------------------------------------------------------ next steps

def _categories(result):
    return [s.category for s in result.next_steps]


@pytest.mark.parametrize("trace", ["fa3_gemm_h100.trace.json.gz", "sdpa_h100.trace.json", "offload_h100.trace.json.gz",
                                   "comm_4xh100.trace.json.gz", "norms_h100.trace.json.gz", "idle_h100.trace.json.gz"])
def test_flags_come_first_then_fast_paths_then_kernel_work(trace):
    result = plan(trace)
    cats = _categories(result)
    assert [ORDER[c] for c in cats] == sorted(ORDER[c] for c in cats)
    assert [s.order for s in result.next_steps] == list(range(1, len(cats) + 1))
    assert cats[-1] == "kernel_work" and result.next_steps[-1].target_skill == result.target_skill


def test_copies_under_layerwise_offload_turn_it_off_or_raise_prefetch():
    steps = plan("offload_h100.trace.json.gz").next_steps
    assert steps[0].add_flags == ["--dit-layerwise-offload", "false"]
    assert steps[1].add_flags[0] == "--dit-offload-prefetch-size"
    assert "on in the command" in steps[0].why


def test_communication_suggests_fewer_gpus_then_cfg_parallel():
    steps = plan("comm_4xh100.trace.json.gz", hardware="4xH100").next_steps
    assert steps[0].add_flags == ["--num-gpus", "2"]
    assert steps[1].option_ids == ["cfg_parallel"]
    assert steps[1].add_flags == ["--enable-cfg-parallel"]  # 0.5.10.post1: a bare switch
    fast = [s.fast_path_id for s in steps if s.category == "fast_path"]
    assert "fp-ulysses-usp" in fast and "fp-turbo-layer-async-a2a" in fast


def test_cfg_parallel_spelling_follows_the_release(tmp_path):
    dump = tmp_path / "dump.json"
    shutil.copy(BASELINE, dump)
    steps = plan_kernel_handoff(perf_dump=str(dump), trace=str(TRACES / "comm_4xh100.trace.json.gz"),
                                model="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
                                command="sglang generate --model-path Wan-AI/Wan2.1-T2V-1.3B-Diffusers --num-gpus 4 "
                                        "--ulysses-degree 4").next_steps
    cfg = next(s for s in steps if s.option_ids == ["cfg_parallel"])
    assert cfg.add_flags[0] in ("--cfg-parallel-size", "--enable-cfg-parallel")


def test_sdpa_switches_to_fa_where_fa_exists():
    steps = plan("sdpa_h100.trace.json").next_steps
    assert steps[0].category == "flag" and steps[0].add_flags == ["--attention-backend", "fa"]
    eff = plan("sdpa_efficient_a100.trace.json.gz", hardware="1xA100-80GB").next_steps
    assert eff[0].add_flags == ["--attention-backend", "fa"]


def test_sdpa_on_sm12x_gets_no_fa_step():
    result = plan("sdpa_h100.trace.json", hardware="1xRTX5090")
    assert not any(s.option_ids == ["attention_backend", "attn_fa"] for s in result.next_steps)
    assert any(w.code == "hardware_mismatch" for w in result.warnings)


def test_fa3_run_gets_no_backend_switch():
    steps = plan("fa3_gemm_h100.trace.json.gz").next_steps
    assert not any("attn_fa" in s.option_ids for s in steps)


def test_idle_gaps_suggest_torch_compile_unless_on():
    assert plan("idle_h100.trace.json.gz").next_steps[0].option_ids == ["torch_compile"]
    steps = plan("idle_h100.trace.json.gz", command="sglang generate --model-path x --enable-torch-compile").next_steps
    assert not any(s.option_ids == ["torch_compile"] for s in steps)


def test_fast_paths_match_hotspot_and_release():
    result = plan("norms_h100.trace.json.gz")
    fast = [s.fast_path_id for s in result.next_steps if s.category == "fast_path"]
    assert fast[0] == "fp-triton-norms"  # the hot kernel came from aten::rms_norm
    assert "fp-zimage-residual-modulation" not in fast  # another model family
    assert "fp-breakable-cuda-graph" not in plan("idle_h100.trace.json.gz").model_dump_json()  # 0.5.16+ only
    assert "fp-ulysses-usp" not in fast  # one GPU: no distributed fast paths


@pytest.mark.parametrize("version,skill,shipped", [
    ("0.5.10.post1", "sglang-diffusion-triton-kernel", True),
    ("0.5.11", "sglang-diffusion-ako4all-kernel", True),
    ("0.5.23", "sglang-diffusion-triton-kernel", False),
])
def test_target_skill_follows_where_it_lives(tmp_path, version, skill, shipped):
    dump = tmp_path / "d.json"
    shutil.copy(PROFILED, dump)
    facts = json.loads(Path(PROFILED + ".meta.json").read_text()) | {"sglang_version": version}
    (tmp_path / "d.json.meta.json").write_text(json.dumps(facts))
    result = plan_kernel_handoff(perf_dump=str(dump), trace=str(TRACES / "norms_h100.trace.json.gz"))
    assert result.target_skill == skill
    assert any(w.code == "target_skill_not_shipped" for w in result.warnings) is not shipped


# ------------------------------------------------------------------ baselines and the brief

def test_profiled_run_without_baseline_says_it_is_missing():
    result = plan_kernel_handoff(perf_dump=PROFILED, trace=str(TRACES / "sdpa_h100.trace.json"))
    assert result.profiled_run is True
    assert result.baseline.total_ms is None and "profiled" in result.baseline.missing_reason
    assert any(w.code == "baseline_missing" for w in result.warnings)
    assert "**Missing:**" in result.brief


def test_baseline_numbers_come_from_the_unprofiled_dump():
    result = plan("sdpa_h100.trace.json")
    base = json.loads(Path(BASELINE).read_text())
    assert result.baseline.total_ms == pytest.approx(base["total_duration_ms"])
    assert result.findings.total_ms == pytest.approx(base["total_duration_ms"] * 1.3, rel=1e-4)  # profiled run
    assert f"{base['total_duration_ms']:,.1f} ms" in result.brief


def test_brief_holds_everything_a_kernel_skill_needs():
    result = plan("sdpa_h100.trace.json")
    brief = result.brief
    for needle in ("sglang generate --model-path Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "'A corgi surfing a wave'",
                   "0.5.10.post1", "NVIDIA H100", "832x480, 81 frames", "steps: 30", "pytorch_flash::flash_fwd_kernel",
                   "[1, 32760, 12, 128]", "c10::BFloat16", "fp-attention-backend-selection", "1.5 %", "ABBA",
                   "assert_close", "rtol=atol=1e-2", "multimodal_gen/runtime/layers/attention/",
                   f"`{result.target_skill}`"):
        assert needle in brief, needle
    assert "--profile" not in brief.split("```bash")[1].split("```")[0]  # reproduction is the unprofiled form


def test_secrets_in_the_command_stay_out():
    result = plan("sdpa_h100.trace.json", command="HF_TOKEN=hf_supersecret123 sglang generate --model-path m")
    assert "hf_supersecret123" not in result.model_dump_json()


def test_result_stays_small():
    assert len(plan("comm_4xh100.trace.json.gz").model_dump_json()) < 24_000


def test_perf_dump_alone_asks_for_a_profile():
    result = plan_kernel_handoff(perf_dump=BASELINE)
    assert result.findings.trace is None and result.findings.stages
    assert result.next_steps[0].category == "measure" and "--profile" in result.next_steps[0].add_flags
    assert any(w.code == "no_trace" for w in result.warnings)
    denoise = next(s for s in result.findings.stages if s.is_denoising)
    assert denoise.name == "DenoisingStage" and denoise.share_pct > 50


def test_run_id_reads_the_run_record_and_finds_its_trace(isolated_state):
    run_id = "20260101-000000-abcdef"
    rdir = isolated_state / "runs" / run_id
    (rdir / "traces").mkdir(parents=True)
    shutil.copy(PROFILED, rdir / "perf-1.json")
    shutil.copy(TRACES / "offload_h100.trace.json.gz", rdir / "traces" / "req-5_steps-global-rank0.trace.json.gz")
    record = {"run_id": run_id, "run_dir": str(rdir), "model": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
              "hardware": "1xH100", "sglang_version": "0.5.10.post1", "profile": True,
              "command": "sglang generate --model-path Wan-AI/Wan2.1-T2V-1.3B-Diffusers --profile",
              "argv": ["sglang", "generate", "--model-path", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "--profile"],
              "perf_paths": [str(rdir / "perf-1.json")], "result": {"perf_dump_path": str(rdir / "perf-1.json")}}
    (rdir / "run.json").write_text(json.dumps(record))
    result = plan_kernel_handoff(run_id=run_id)
    assert result.inputs.trace.endswith("rank0.trace.json.gz")
    assert result.profiled_run is True and result.baseline.missing_reason
    assert result.inputs.hardware.startswith("1xH100") and result.inputs.model_family == "wan2.1"
    assert result.findings.dominant_kind == "host_device_copy"


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("name,code", [
    ("truncated.trace.json", "truncated_trace"),
    ("truncated.trace.json.gz", "truncated_trace"),
    ("empty.trace.json", "empty_trace"),
    ("not_a_trace.json", "not_a_trace"),
    ("garbage.trace.json", "not_a_trace"),
    ("missing.trace.json", "trace_not_found"),
])
def test_bad_traces_get_clear_errors(name, code):
    with pytest.raises(ToolInputError) as err:
        plan_kernel_handoff(perf_dump=BASELINE, trace=str(TRACES / name))
    assert err.value.problem.code == code and err.value.problem.fix


def test_empty_gzip_and_binary_garbage(tmp_path):
    empty_gz = tmp_path / "e.trace.json.gz"
    empty_gz.write_bytes(gzip.compress(b""))
    binary = tmp_path / "b.trace.json"
    binary.write_bytes(bytes(range(256)) * 4)
    for path, code in ((empty_gz, "empty_trace"), (binary, "not_a_trace")):
        with pytest.raises(ToolInputError) as err:
            plan_kernel_handoff(trace=str(path))
        assert err.value.problem.code == code


def test_missing_inputs_and_unknown_runs():
    with pytest.raises(ToolInputError) as err:
        plan_kernel_handoff()
    assert err.value.problem.code == "missing_input"
    with pytest.raises(ToolInputError) as err:
        plan_kernel_handoff(run_id="20990101-000000-nope00")
    assert err.value.problem.code == "run_not_found"
    with pytest.raises(ToolInputError):
        plan_kernel_handoff(run_id="../../etc")


# ------------------------------------------------------------------ run records: reproduction, GPUs, history baseline

WAN = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
USER_ARGV = ["sglang", "generate", "--model-path", WAN, "--prompt", "A corgi surfing a wave", "--width", "832",
             "--height", "480", "--num-frames", "81", "--num-inference-steps", "30", "--dit-layerwise-offload", "true"]
WORKLOAD = {"model": WAN, "gpu_type": "H100-80GB-sxm", "gpu_count": 1, "width": 832, "height": 480, "frames": 81,
            "steps": 30}


def _record_run(home, run_id, *, profile=False, status="succeeded", user=(), workload=None, created="2026-01-01T00:00",
                dump=BASELINE, trace=None, hardware="1xH100-80GB-sxm", gpus=(0,), version="0.5.10.post1"):
    """A run as run_generate records it (tools/run_generate.py record + tools/runs/store.py history)."""
    from sglang_diffusion_mcp.tools.runs import store

    rdir = Path(store.run_dir(str(home), run_id))
    rdir.mkdir(parents=True)
    shutil.copy(dump, rdir / "perf-1.json")
    if trace:
        (rdir / "traces").mkdir()
        shutil.copy(TRACES / trace, rdir / "traces" / ("rank0." + Path(trace).name))
    traces = str(rdir / "traces")
    added = [("flag", "--warmup", None), ("flag", "--log-level", "debug")]
    extra = ["--warmup", "--log-level", "debug"]
    env = {"SGLANG_DIFFUSION_SYNC_STAGE_PROFILING": "1", "CUDA_VISIBLE_DEVICES": "0"}
    if profile:
        added.append(("flag", "--profile", None))
        extra.append("--profile")
        env |= {"SGLANG_DIFFUSION_TORCH_PROFILER_DIR": traces, "SGLANG_TORCH_PROFILER_DIR": traces}
    added += [("flag", "--perf-dump-path", str(rdir / "perf-<n>.json")), ("flag", "--output-path", str(rdir))]
    added += [("env", k, v) for k, v in env.items()]
    argv = [*USER_ARGV, *user, *extra, "--perf-dump-path", str(rdir / "perf-1.json"), "--output-path", str(rdir),
            "--output-file-name", f"{run_id}-r1"]
    record = {"run_id": run_id, "run_dir": str(rdir), "created_at": created, "status": status, "model": WAN,
              "command": " ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(argv), "argv": argv,
              "additions": [{"kind": k, "name": n, "value": v, "reason": "r"} for k, n, v in added],
              "gpus": list(gpus), "hardware": hardware, "sglang_version": version, "profile": profile,
              "workload": workload or WORKLOAD, "perf_paths": [str(rdir / "perf-1.json")],
              "result": {"perf_dump_path": str(rdir / "perf-1.json"), "warmup_excluded_s": 60.0,
                         "error": None if status == "succeeded" else {"code": "oom"}}}
    store.create_record(str(rdir), record)
    store.save_history(str(home), record)
    return rdir


def test_reproduction_drops_what_run_generate_added_and_the_profiler(isolated_state):
    run_id = "20260101-000000-profil"
    rdir = _record_run(isolated_state, run_id, profile=True, trace="offload_h100.trace.json.gz")
    result = plan_kernel_handoff(run_id=run_id, baseline_perf_dump=BASELINE)
    repro = result.inputs.reproduce_command
    assert repro == " ".join(USER_ARGV[:5]) + " 'A corgi surfing a wave' " + " ".join(USER_ARGV[6:])
    for gone in (str(rdir), "--profile", "--perf-dump-path", "--output-path", "--output-file-name", "--warmup",
                 "--log-level", "PROFILER_DIR", "CUDA_VISIBLE_DEVICES"):
        assert gone not in repro, gone
    block = result.brief.split("```bash")[1].split("```")[0]
    assert block.strip() == repro and "run_generate" in result.brief.split("```bash")[0]
    assert str(rdir) in result.inputs.command  # the recorded command itself stays as evidence


def test_reproduction_keeps_the_users_own_log_level_and_env(isolated_state):
    run_id = "20260101-000000-loglvl"
    _record_run(isolated_state, run_id, profile=True, trace="offload_h100.trace.json.gz")
    record_path = isolated_state / "runs" / run_id / "run.json"
    record = json.loads(record_path.read_text())
    # this user gave --log-level info themselves: run_generate did not add it
    record["argv"] = [a for a in record["argv"] if a not in ("--log-level", "debug")] + ["--log-level", "info"]
    record["additions"] = [a for a in record["additions"] if a["name"] != "--log-level"]
    record_path.write_text(json.dumps(record))
    assert plan_kernel_handoff(run_id=run_id).inputs.reproduce_command.endswith("--log-level info")
    given = plan_kernel_handoff(perf_dump=BASELINE, trace=str(TRACES / "sdpa_h100.trace.json"), command=(
        "HF_HOME=/models SGLANG_TORCH_PROFILER_DIR=/runs/x/traces sglang generate --model-path m --profile "
        "--num-profiled-timesteps 3 --perf-dump-path /runs/x/perf-1.json --warmup"))
    assert given.inputs.reproduce_command == "HF_HOME=/models sglang generate --model-path m --warmup"


def test_a_single_gpu_run_takes_its_gpus_from_the_record(isolated_state, tmp_path):
    # a trace that does not record its world size, and a record without a hardware spec (no GPU detection)
    doc = json.loads((TRACES / "sdpa_h100.trace.json").read_text())
    doc.pop("distributedInfo")
    trace = tmp_path / "one-gpu.trace.json"
    trace.write_text(json.dumps(doc))
    run_id = "20260101-000000-onegpu"
    _record_run(isolated_state, run_id, profile=True, hardware=None, workload=WORKLOAD | {"gpu_type": None})
    result = plan_kernel_handoff(run_id=run_id, trace=str(trace))
    assert result.inputs.gpu_count == 1
    fast = [s.fast_path_id for s in result.next_steps if s.category == "fast_path"]
    assert fast and not {"fp-ulysses-usp", "fp-varlen-usp-pack"} & set(fast)
    assert "GPUs: 1x NVIDIA H100" in result.brief and "?x" not in result.brief


def test_recorded_gpu_count_beats_the_trace_and_a_mismatch_is_told(isolated_state):
    run_id = "20260101-000000-twogpu"
    _record_run(isolated_state, run_id, profile=True, hardware="2xH100", gpus=(0, 1), trace="comm_4xh100.trace.json.gz",
                workload=WORKLOAD | {"gpu_count": 2})
    result = plan_kernel_handoff(run_id=run_id)
    assert result.inputs.gpu_count == 2 and result.inputs.hardware.startswith("2xH100")
    assert any(w.code == "gpu_count_mismatch" for w in result.warnings)
    assert result.next_steps[0].add_flags == ["--num-gpus", "1"]


def test_an_attention_hotspot_gets_no_fp8_and_lossless_steps_come_first():
    result = plan("fa3_gemm_h100.trace.json.gz")
    assert result.hotspot.kind == "attention"
    assert not any("weights_fp8" in s.option_ids or s.lossy for s in result.next_steps)

    from sglang_diffusion_mcp.tools.kernel_handoff.next_steps import NextStep, _ordered

    steps = [NextStep(order=1, category="flag", title="lossy", why="", lossy=True),
             NextStep(order=2, category="fast_path", title="fp", why=""),
             NextStep(order=3, category="flag", title="lossless", why=""),
             NextStep(order=4, category="measure", title="measure", why="")]
    assert [(s.order, s.title) for s in _ordered(steps)] == [(1, "measure"), (2, "lossless"), (3, "lossy"), (4, "fp")]


def test_a_gemm_hotspot_still_gets_fp8_after_the_lossless_steps(tmp_path):
    doc = json.loads(gzip.decompress((TRACES / "fa3_gemm_h100.trace.json.gz").read_bytes()))
    # make the attention kernels short: GEMMs become the top compute kernel
    for event in doc["traceEvents"]:
        if event.get("cat") == "kernel" and "FlashAttn" in event.get("name", ""):
            event["dur"] = max(1, event["dur"] // 20)
    path = tmp_path / "gemm.trace.json"
    path.write_text(json.dumps(doc))
    result = plan_kernel_handoff(perf_dump=BASELINE, trace=str(path))
    assert result.hotspot.kind == "gemm"
    fp8 = next(s for s in result.next_steps if "weights_fp8" in s.option_ids)
    flags = [s for s in result.next_steps if s.category == "flag"]
    assert fp8.lossy and flags.index(fp8) == len([s for s in flags if not s.lossy])  # after every lossless flag


def test_the_baseline_is_found_in_the_run_history(isolated_state):
    _record_run(isolated_state, "20260101-000000-match1", created="2026-01-01T00:00")  # the one to find
    _record_run(isolated_state, "20260101-000001-otherw", created="2026-01-01T00:01",
                workload=WORKLOAD | {"width": 1280})  # another shape
    _record_run(isolated_state, "20260101-000002-failed", created="2026-01-01T00:02", status="failed")
    _record_run(isolated_state, "20260101-000003-2gpus0", created="2026-01-01T00:03",
                workload=WORKLOAD | {"gpu_count": 2}, gpus=(0, 1))
    _record_run(isolated_state, "20260101-000004-prof00", created="2026-01-01T00:04", profile=True)  # profiled
    run_id = "20260101-000005-target"
    _record_run(isolated_state, run_id, created="2026-01-01T00:05", profile=True, dump=PROFILED,
                trace="sdpa_h100.trace.json")
    result = plan_kernel_handoff(run_id=run_id)
    base = json.loads(Path(BASELINE).read_text())
    assert result.inputs.baseline_run_id == "20260101-000000-match1"
    assert result.baseline.total_ms == pytest.approx(base["total_duration_ms"])
    assert "20260101-000000-match1" in result.baseline.source and "20260101-000000-match1" in result.brief
    w = next(w for w in result.warnings if w.code == "baseline_from_history")
    assert "latest succeeded unprofiled run" in w.message and "832x480" in w.message
    assert not any(w.code == "baseline_missing" for w in result.warnings)


def test_a_history_baseline_with_the_same_flags_is_preferred_and_differences_are_named(isolated_state):
    _record_run(isolated_state, "20260101-000000-sameff", created="2026-01-01T00:00")
    _record_run(isolated_state, "20260101-000001-difff0", created="2026-01-01T00:01",
                user=["--attention-backend", "torch_sdpa"])
    run_id = "20260101-000002-target"
    _record_run(isolated_state, run_id, created="2026-01-01T00:02", profile=True, dump=PROFILED,
                trace="sdpa_h100.trace.json")
    assert plan_kernel_handoff(run_id=run_id).inputs.baseline_run_id == "20260101-000000-sameff"
    # with only the other one left, it is used and its different flags are told
    shutil.rmtree(isolated_state / "runs" / "20260101-000000-sameff")
    result = plan_kernel_handoff(run_id=run_id)
    assert result.inputs.baseline_run_id == "20260101-000001-difff0"
    w = next(w for w in result.warnings if w.code == "baseline_from_history")
    assert "--attention-backend (absent vs torch_sdpa)" in w.message


def test_no_matching_history_run_says_the_baseline_is_missing(isolated_state):
    _record_run(isolated_state, "20260101-000000-otherw", workload=WORKLOAD | {"steps": 50})
    run_id = "20260101-000001-target"
    _record_run(isolated_state, run_id, profile=True, dump=PROFILED, trace="sdpa_h100.trace.json",
                created="2026-01-01T00:01")
    result = plan_kernel_handoff(run_id=run_id)
    assert result.baseline.total_ms is None and result.inputs.baseline_run_id is None
    w = next(w for w in result.warnings if w.code == "baseline_missing")
    assert "No succeeded unprofiled run" in w.message
