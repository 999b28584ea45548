"""recommend_flags: a scenario table over models, GPU classes, GPU counts, budgets and sglang releases.

Every recommendation must pass check_command with the same inputs (the guarantee in issue 4)."""

from __future__ import annotations

import pytest

from sglang_diffusion_mcp.knowledge import releases
from sglang_diffusion_mcp.tools.check_command import check_command
from sglang_diffusion_mcp.tools.problems import ToolInputError
from sglang_diffusion_mcp.tools.recommend_flags import recommend_flags

WAN_A14B = "Wan-AI/Wan2.2-T2V-A14B-Diffusers"

# (id, inputs, expectations). Expectations: plan facts read from argv, or the error code when nothing is valid.
SCENARIOS = [
    # seed quick recipe: maximum speed, video, 8 GPUs, lossless (Wan A14B)
    ("recipe-wan-a14b-8xh100-0.5.23", dict(model=WAN_A14B, hardware="8xH100", sglang_version="0.5.23"),
     dict(num_gpus=8, compile=True, warmup=["--warmup-mode", "request"], manual=True, alt_cfg=True)),
    ("recipe-wan-a14b-8xh100-0.5.9", dict(model=WAN_A14B, hardware="8xH100", sglang_version="0.5.9"),
     dict(num_gpus=8, warmup=["--warmup"], manual=False)),
    ("recipe-wan-a14b-8xh200-0.5.14", dict(model=WAN_A14B, hardware="8xH200", sglang_version="0.5.14"),
     dict(num_gpus=8, warmup=["--warmup-mode", "request"], dit="resident")),
    # seed quick recipe: LTX-2 on one GPU
    ("recipe-ltx2-1xh100", dict(model="Lightricks/LTX-2", hardware="1xH100", sglang_version="0.5.23"),
     dict(num_gpus=1, compile=True)),
    # seed quick recipe: maximum speed, image model, single GPU: layerwise off when it fits
    ("recipe-image-1gpu-flux-h100", dict(model="black-forest-labs/FLUX.1-dev", hardware="1xH100",
                                         sglang_version="0.5.14"), dict(num_gpus=1, dit="resident")),
    ("recipe-image-1gpu-zimage-4090", dict(model="Tongyi-MAI/Z-Image-Turbo", hardware="1xRTX4090",
                                           sglang_version="0.5.9"), dict(num_gpus=1, dit="resident", cfg=False)),
    # seed quick recipe: low VRAM, decent speed: layerwise with an image-model prefetch
    ("recipe-low-vram-flux-4090", dict(model="black-forest-labs/FLUX.1-dev", hardware="1xRTX4090",
                                       sglang_version="0.5.14"), dict(dit="layerwise", prefetch="0.1")),
    ("recipe-low-vram-budget-flux-h100", dict(model="flux.1-dev", hardware="1xH100", vram_budget_gb=20,
                                              sglang_version="0.5.23"), dict(dit="layerwise")),
    # seed quick recipe: maximum speed, lossy (sage attention); Cache-DiT needs a config file and is rejected
    ("recipe-lossy-wan14b-8xh200", dict(model="wan2.1-t2v-14b", hardware="8xH200", allow_lossy=True,
                                        sglang_version="0.5.23"), dict(lossy=True, rejected="cache_dit")),
    ("lossless-by-default", dict(model="wan2.1-t2v-14b", hardware="8xH200", sglang_version="0.5.23"),
     dict(lossy=False, rejected="attn_sage_attn")),
    # 24 GB consumer cards
    ("4090-wan13b-0.5.23", dict(model="wan2.1-t2v-1.3b", hardware="1xRTX4090", sglang_version="0.5.23"),
     dict(num_gpus=1, fits=True)),
    ("4090-wan14b-0.5.10-nothing-fits", dict(model="wan2.1-t2v-14b", hardware="1xRTX4090",
                                              sglang_version="0.5.10.post1"), dict(error="nothing_fits")),
    ("4090-wan14b-480p-0.5.23-layerwise-encoders", dict(model="wan2.1-t2v-14b", hardware="1xRTX4090", width=832,
                                                        height=480, sglang_version="0.5.23"),
     dict(dit="layerwise", fits=True)),
    ("5090-qwen-image", dict(model="Qwen/Qwen-Image", hardware="1xRTX5090", sglang_version="0.5.23"),
     dict(fits=True, attention="torch_sdpa")),
    # 48 GB
    ("l40s-qwen-image", dict(model="Qwen/Qwen-Image", hardware="1xL40S", sglang_version="0.5.23"), dict(fits=True)),
    ("2xl40s-qwen-edit", dict(model="Qwen/Qwen-Image-Edit", hardware="2xL40S", sglang_version="0.5.14",
                              image_width=1024, image_height=1024), dict(num_gpus=2)),
    ("l40s-flux2-0.5.14", dict(model="flux.2-dev", hardware="1xL40S", sglang_version="0.5.14"),
     dict(dit="layerwise")),
    # 80 GB
    ("h100-wan-ti2v-balanced", dict(model="wan2.2-ti2v-5b", hardware="1xH100", objective="balanced",
                                    sglang_version="0.5.23"), dict(headroom_share=0.10)),
    ("a100-40-sd35", dict(model="sd3.5-large", hardware="1xA100-40GB", sglang_version="0.5.14"), dict(num_gpus=1)),
    ("2xh100-wan14b", dict(model="wan2.1-t2v-14b", hardware="2xH100", sglang_version="0.5.23"), dict(num_gpus=2)),
    ("4xh100-hunyuan-no-cfg-parallel", dict(model="hunyuanvideo", hardware="4xH100", sglang_version="0.5.14"),
     dict(num_gpus=4, cfg=False)),
    ("8xh100-i2v", dict(model="wan2.1-i2v-14b-720p", hardware="8xH100", image_width=1280, image_height=720,
                        sglang_version="0.5.23"), dict(num_gpus=8)),
    ("4xh100-flux2", dict(model="flux.2-dev", hardware="4xH100", sglang_version="0.5.23"), dict(fits=True)),
    ("h100-memory-objective", dict(model="wan2.1-t2v-14b", hardware="1xH100", objective="memory",
                                   sglang_version="0.5.23"), dict(peak_below_speed=True)),
    # 141 GB
    ("2xh200-wan14b", dict(model="wan2.1-t2v-14b", hardware="2xH200", sglang_version="0.5.23"),
     dict(num_gpus=2, dit="resident")),
    ("2xh200-mova", dict(model="mova-360p", hardware="2xH200", image_width=640, image_height=352,
                         sglang_version="0.5.23"), dict(num_gpus=2)),
    # budgets nothing fits
    ("budget-too-small", dict(model="flux.1-dev", hardware="1xH100", vram_budget_gb=4, sglang_version="0.5.23"),
     dict(error="nothing_fits")),
]


def _flag(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else (
        "" if flag in argv else None)


def _dit_residency(argv: list[str]) -> str:
    if "--component-residency" in argv:
        assigns = dict(a.split("=") for a in _flag(argv, "--component-residency").split(","))
        return {"layerwise-offload": "layerwise", "component-offload": "cpu_offload"}.get(assigns["dit"], "resident")
    if _flag(argv, "--dit-layerwise-offload") == "true":
        return "layerwise"
    return "cpu_offload" if _flag(argv, "--dit-cpu-offload") == "true" else "resident"


@pytest.mark.parametrize("case_id, inputs, expect", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_scenario(case_id, inputs, expect):
    if "error" in expect:
        with pytest.raises(ToolInputError) as info:
            recommend_flags(**inputs)
        assert info.value.problem.code == expect["error"]
        assert info.value.problem.fix
        return
    result = recommend_flags(**inputs)
    argv = result.argv
    assert argv[:2] == ["sglang", "generate"]
    assert result.sglang_version == inputs["sglang_version"]
    # fully explicit: every degree and the residency are written
    for flag in ("--num-gpus", "--tp-size", "--ulysses-degree", "--ring-degree"):
        assert flag in argv
    assert "--component-residency" in argv or "--dit-cpu-offload" in argv
    # every flag exists in the target release, spelled as it expects
    for choice in result.flags:
        info = releases.flag_info(inputs["sglang_version"], choice.flag)
        assert info is not None, choice.flag
        assert choice.reason and choice.source
        if info.style == "switch":
            assert choice.value is None
    checked = check_command(argv=argv, hardware=inputs["hardware"], sglang_version=inputs["sglang_version"],
                            vram_budget_gb=inputs.get("vram_budget_gb"))
    assert checked.valid, checked.errors
    assert not [w for w in checked.warnings if w.code not in ("image_path_missing",)], checked.warnings
    assert result.estimate.fits
    assert result.alternatives[-1].label.startswith("sglang defaults")
    if "num_gpus" in expect:
        assert _flag(argv, "--num-gpus") == str(expect["num_gpus"])
    if "dit" in expect:
        assert _dit_residency(argv) == expect["dit"]
    if "prefetch" in expect:
        assert _flag(argv, "--dit-offload-prefetch-size") == expect["prefetch"]
    if "compile" in expect:
        assert _flag(argv, "--enable-torch-compile") == "true"
    if "warmup" in expect:
        assert " ".join(expect["warmup"]) in " ".join(argv)
    if "manual" in expect:
        assert (_flag(argv, "--performance-mode") == "manual") is expect["manual"]
    if "cfg" in expect:
        assert _flag(argv, "--enable-cfg-parallel") in (("true", "") if expect["cfg"] else ("false", None))
    if expect.get("alt_cfg"):
        assert any("CFG parallel" in a.label for a in result.alternatives)
    if "lossy" in expect:
        assert any(f.lossy for f in result.flags) is expect["lossy"]
    if "rejected" in expect:
        assert expect["rejected"] in {r.option for r in result.rejected}
    if "attention" in expect:
        assert _flag(argv, "--attention-backend") == expect["attention"]
    if expect.get("peak_below_speed"):
        fastest = recommend_flags(**{**inputs, "objective": "speed"})
        assert result.estimate.per_gpu_peak_gb < fastest.estimate.per_gpu_peak_gb
    if "headroom_share" in expect:
        assert result.estimate.headroom_gb >= expect["headroom_share"] * result.estimate.budget_gb


def test_scenarios_cover_the_issue_matrix():
    versions = {s[1]["sglang_version"] for s in SCENARIOS}
    assert {"0.5.9", "0.5.14", "0.5.23"} <= versions and len(SCENARIOS) >= 25
    gpus = {s[1]["hardware"].split("x", 1)[1] for s in SCENARIOS}
    assert {"RTX4090", "L40S", "H100", "H200"} <= gpus
    counts = {int(s[1]["hardware"].split("x")[0]) for s in SCENARIOS}
    assert {1, 2, 4, 8} <= counts


def test_deterministic():
    a = recommend_flags(model=WAN_A14B, hardware="8xH100", sglang_version="0.5.23")
    b = recommend_flags(model=WAN_A14B, hardware="8xH100", sglang_version="0.5.23")
    assert a.model_dump() == b.model_dump()


def test_cfg_parallel_is_a_bare_switch_up_to_0_5_11():
    result = recommend_flags(model="wan2.1-t2v-14b", hardware="2xH200", sglang_version="0.5.10.post1")
    choice = next((f for f in result.flags if f.flag == "--enable-cfg-parallel"), None)
    assert choice is None or choice.value is None


@pytest.mark.parametrize("inputs, code", [
    (dict(model="no-such-model-xyz", hardware="1xH100"), "unknown_model"),
    (dict(model="flux.1-dev", hardware="banana"), "bad_hardware_spec"),
    (dict(model="flux.1-dev", hardware="1xH100", vram_budget_gb=-3), "bad_budget"),
    (dict(model="flux.1-dev", hardware="1xH100", vram_budget_gb=500), "bad_budget"),
    (dict(model="flux.1-dev", hardware="8xMI300X"), "hardware_not_supported"),
    (dict(model="flux.1-dev", hardware="1xH100", sglang_version="0.4.0"), "bad_sglang_version"),
    (dict(model="flux.1-dev", hardware="1xH100", width=1000), "bad_workload"),
    (dict(model="wan2.1-i2v-14b-480p", hardware="1xH100"), "image_required"),
    (dict(model="", hardware="1xH100"), "missing_model"),
])
def test_bad_input_gets_an_actionable_error(inputs, code):
    with pytest.raises(ToolInputError) as info:
        recommend_flags(**inputs)
    assert info.value.problem.code == code
    assert info.value.problem.fix


def test_a_gpu_without_bf16_needs_allow_lossy_for_fp16():
    with pytest.raises(ToolInputError) as info:
        recommend_flags(model="flux.1-dev", hardware="1xT4", sglang_version="0.5.23")
    assert info.value.problem.code == "no_bf16" and "allow_lossy" in info.value.problem.fix
    result = recommend_flags(model="flux.1-dev", hardware="1xT4", sglang_version="0.5.23", allow_lossy=True)
    precision = next(f for f in result.flags if f.flag == "--dit-precision")
    assert precision.value == "fp16" and precision.lossy


def test_the_users_model_id_is_kept():
    result = recommend_flags(model="my-org/my-flux-finetune", family="flux.1", hardware="1xH100",
                             sglang_version="0.5.23")
    assert result.argv[result.argv.index("--model-path") + 1] == "my-org/my-flux-finetune"


def test_a_video_model_never_plans_one_frame():
    result = recommend_flags(model="Wan-AI/Wan2.2-T2V-A14B-Diffusers", hardware="8xH100", sglang_version="0.5.9")
    assert result.argv[result.argv.index("--num-frames") + 1] == "81"
    assert "default_replaced" in {w.code for w in result.warnings}


def test_bad_objective_is_actionable():
    with pytest.raises(ToolInputError) as info:
        recommend_flags(model="flux.1-dev", hardware="1xH100", objective="fast")
    assert info.value.problem.code == "bad_objective"


def test_unknown_model_with_family_borrows_its_defaults():
    result = recommend_flags(model="someone/my-wan-finetune", family="wan2.1", hardware="1xH100",
                             sglang_version="0.5.23")
    assert any(w.code for w in result.warnings)
    assert result.argv[:2] == ["sglang", "generate"]


def test_no_gpu_and_no_spec_asks_for_one(monkeypatch):
    from sglang_diffusion_mcp.tools import hardware_spec
    from sglang_diffusion_mcp.tools.gpus.model import DetectGpusResult

    monkeypatch.setattr("sglang_diffusion_mcp.tools.detect_gpus.detect_gpus",
                        lambda *a, **k: DetectGpusResult(source="none"))
    with pytest.raises(ToolInputError) as info:
        recommend_flags(model="flux.1-dev")
    assert info.value.problem.code == "no_gpu_detected" and "1xRTX4090" in info.value.problem.fix
    assert hardware_spec  # imported for the monkeypatch target's module


def test_the_installed_sglang_version_is_used_when_none_is_given(monkeypatch, tmp_path):
    from run_helpers import use_fake

    use_fake(monkeypatch, tmp_path, version="0.5.10.post1")
    result = recommend_flags(model="flux.1-dev", hardware="1xH100")
    assert result.sglang_version == "0.5.10.post1"
    assert "--warmup" in result.argv and "--performance-mode" not in result.argv


def test_a_given_image_path_is_in_the_command(tmp_path):
    image = tmp_path / "cat.png"
    image.write_bytes(b"png")
    result = recommend_flags(model="wan2.2-ti2v-5b", hardware="1xH100", sglang_version="0.5.23",
                             image_path=str(image))
    assert result.argv[result.argv.index("--image-path") + 1] == str(image)
    assert check_command(argv=result.argv, hardware="1xH100", sglang_version="0.5.23").valid
