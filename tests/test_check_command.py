"""check_command: parsing, release spellings, rules, degrees against GPUs, and the property that every
recommendation passes it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sglang_diffusion_mcp.tools.check_command import check_command
from sglang_diffusion_mcp.tools.problems import ToolInputError
from sglang_diffusion_mcp.tools.recommend_flags import recommend_flags

SEED_WAN = """sglang generate --model-path Wan-AI/Wan2.2-T2V-A14B-Diffusers \\
  --num-gpus 8 --enable-cfg-parallel --ulysses-degree 4 \\
  --enable-torch-compile --warmup \\
  --text-encoder-cpu-offload true \\
  --prompt "..." --save-output"""


def codes(problems) -> set[str]:
    return {p.code for p in problems}


def test_seed_recipe_is_valid_in_0_5_9_but_leaves_offload_to_sglang():
    result = check_command(command=SEED_WAN, hardware="8xH100", sglang_version="0.5.9")
    assert result.valid
    assert "offload-implicit-defaults-legacy" in codes(result.warnings)
    assert any("layerwise" in item for item in result.implicit)


def test_seed_recipe_in_0_5_23_needs_the_new_warmup_spelling():
    result = check_command(command=SEED_WAN, hardware="8xH100", sglang_version="0.5.23")
    assert not result.valid
    problem = next(p for p in result.errors if p.flag == "--warmup")
    assert problem.code == "flag_not_in_release" and problem.fix == "Write --warmup-mode request."


def test_performance_mode_warning_from_0_5_12():
    result = check_command(command=SEED_WAN.replace("--warmup", "--warmup-mode request"), hardware="8xH100",
                           sglang_version="0.5.14")
    assert "offload-performance-mode-replans" in codes(result.warnings)


def test_env_prefix_and_continuations_are_handled():
    result = check_command(command="HF_TOKEN=abc SGLANG_CACHE_DIT_ENABLED=true " + SEED_WAN, hardware="8xH100",
                           sglang_version="0.5.9")
    assert result.env == {"HF_TOKEN": "abc", "SGLANG_CACHE_DIT_ENABLED": "true"}
    assert result.normalized_argv[:4] == ["sglang", "generate", "--model-path", "Wan-AI/Wan2.2-T2V-A14B-Diffusers"]


def test_a_value_on_a_bare_switch_is_an_error_up_to_0_5_11():
    cmd = "sglang generate --model-path wan2.1-t2v-14b --num-gpus 2 --enable-cfg-parallel true"
    old = check_command(command=cmd, hardware="2xH100", sglang_version="0.5.10.post1")
    assert "switch_with_value" in codes(old.errors)
    new = check_command(command=cmd, hardware="2xH100", sglang_version="0.5.14")
    assert "switch_with_value" not in codes(new.errors)


def test_unknown_and_misspelled_flags():
    result = check_command(command="sglang generate --model-path flux.1-dev --enable_torch_compile --num-gpu 1 "
                                   "--frobnicate 3", hardware="1xH100", sglang_version="0.5.23")
    assert {"underscore_flag", "unknown_flag"} <= codes(result.errors)
    assert "abbreviated_flag" in codes(result.warnings)  # argparse takes a unique prefix; sglang may drop it
    assert all(p.fix for p in result.errors + result.warnings)


def test_ambiguous_abbreviation_is_an_error():
    result = check_command(command="sglang generate --model-path flux.1-dev --warmup-", hardware="1xH100",
                           sglang_version="0.5.23")
    assert "ambiguous_flag" in codes(result.errors)


def test_component_path_overrides_are_accepted():
    result = check_command(command="sglang generate --model-path flux.1-dev --transformer-path /w/t", hardware="1xH100",
                           sglang_version="0.5.23")
    assert "unknown_flag" not in codes(result.errors)


@pytest.mark.parametrize("cmd, flag", [
    ("--num-gpus two", "--num-gpus"), ("--num-gpus 0", "--num-gpus"), ("--width abc", "--width"),
    ("--attention-backend flash_attn", "--attention-backend"), ("--component-residency dit=offload",
                                                                 "--component-residency"),
])
def test_values_sglang_would_refuse(cmd, flag):
    result = check_command(command=f"sglang generate --model-path flux.1-dev {cmd}", hardware="1xH100",
                           sglang_version="0.5.23")
    assert not result.valid and flag in {p.flag for p in result.errors}


@pytest.mark.parametrize("cmd, version, code", [
    ("SGLANG_CACHE_DIT_ENABLED=true sglang generate --model-path wan2.1-t2v-14b --dit-layerwise-offload true",
     "0.5.18", "exclusion-layerwise-with-cache-dit"),
    ("sglang generate --model-path flux.1-dev --enable-svdquant --transformer-weights-path w.safetensors", "0.5.23",
     "capability-nunchaku-sm8x-sm12x"),
    ("sglang generate --model-path flux.1-dev --enable-svdquant", "0.5.23", "exclusion-svdquant-needs-weights"),
    ("sglang generate --model-path black-forest-labs/FLUX.2-dev-NVFP4", "0.5.23", "capability-nvfp4-sm10x-sm12x"),
])
def test_rules_that_depend_on_the_command_line_fire(cmd, version, code):
    result = check_command(command=cmd, hardware="1xH100", sglang_version=version)
    assert code in codes(result.errors)


def test_layerwise_with_cache_dit_is_fine_from_0_5_19():
    cmd = "SGLANG_CACHE_DIT_ENABLED=true sglang generate --model-path wan2.1-t2v-14b --dit-layerwise-offload true"
    assert "exclusion-layerwise-with-cache-dit" not in codes(check_command(command=cmd, hardware="1xH100",
                                                                           sglang_version="0.5.19").errors)


def test_gates_pass_when_their_condition_is_met():
    sta = check_command(command="sglang generate --model-path wan2.1-t2v-14b --attention-backend sliding_tile_attn "
                                "--mask-strategy-file-path m.json", hardware="1xH100", sglang_version="0.5.23")
    assert "capability-sliding-tile-hopper" not in codes(sta.errors)
    t4 = check_command(command="sglang generate --model-path flux.1-dev --dit-precision fp16", hardware="1xT4",
                       sglang_version="0.5.23")
    assert "capability-bf16-sm80" not in codes(t4.errors)


def test_cfg_parallel_on_a_guidance_distilled_model_is_an_error():
    result = check_command(command="sglang generate --model-path flux.1-dev --num-gpus 2 --ulysses-degree 1 "
                                   "--ring-degree 1 --enable-cfg-parallel true", hardware="2xH100",
                           sglang_version="0.5.23")
    assert "parallel-cfg-model-support" in codes(result.errors)


def test_flag_missing_in_the_target_release_says_where_it_exists():
    result = check_command(command="sglang generate --model-path flux.1-dev --performance-mode manual",
                           hardware="1xH100", sglang_version="0.5.9")
    problem = next(p for p in result.errors if p.code == "flag_not_in_release")
    assert "0.5.12" in problem.message


@pytest.mark.parametrize("cmd, code", [
    ("--num-gpus 4 --ulysses-degree 3 --ring-degree 1", "parallel-sp-equals-ulysses-times-ring"),
    ("--num-gpus 8 --ulysses-degree 8 --ring-degree 1", "not_enough_gpus"),
    ("--num-gpus 2 --ulysses-degree 1 --ring-degree 2 --attention-backend torch_sdpa", "parallel-ring-needs-fa-or-sage"),
    ("--num-gpus 1 --enable-cfg-parallel true", "parallel-cfg-needs-two-gpus"),
])
def test_illegal_combinations_and_degrees(cmd, code):
    result = check_command(command=f"sglang generate --model-path wan2.1-t2v-14b {cmd}", hardware="4xH100",
                           sglang_version="0.5.23")
    assert code in codes(result.errors)
    assert not result.valid


def test_ulysses_must_divide_the_heads():
    result = check_command(command="sglang generate --model-path wan2.1-t2v-1.3b --num-gpus 8 --ulysses-degree 8 "
                                   "--ring-degree 1 --enable-cfg-parallel false", hardware="8xH100",
                           sglang_version="0.5.23")
    assert "parallel-ulysses-divides-heads" in codes(result.errors)  # 12 heads


def test_compute_capability_gates():
    t4 = check_command(command="sglang generate --model-path flux.1-dev --attention-backend fa", hardware="1xT4",
                       sglang_version="0.5.23")
    assert {"capability-bf16-sm80"} <= codes(t4.errors) and not t4.valid
    sage3 = check_command(command="sglang generate --model-path flux.1-dev --attention-backend sage_attn_3",
                          hardware="1xH100", sglang_version="0.5.23")
    assert "capability-sage-attn-3-sm12x" in codes(sage3.errors)


def test_fsdp_with_layerwise_offload_is_flagged():
    result = check_command(command="sglang generate --model-path wan2.1-t2v-14b --num-gpus 2 --ulysses-degree 2 "
                                   "--ring-degree 1 --use-fsdp-inference true --dit-layerwise-offload true",
                           hardware="2xH100", sglang_version="0.5.14")
    assert "exclusion-fsdp-with-layerwise" in codes(result.warnings + result.errors)


def test_compile_without_warmup_warns():
    result = check_command(command="sglang generate --model-path flux.1-dev --enable-torch-compile true",
                           hardware="1xH100", sglang_version="0.5.23")
    assert "warmup-compile-needs-warmed-timing" in codes(result.warnings)


def test_layerwise_offload_on_an_image_model_that_fits_resident_warns():
    result = check_command(command="sglang generate --model-path flux.1-dev --dit-layerwise-offload true",
                           hardware="1xH100", sglang_version="0.5.14")
    assert "offload-prefer-resident" in codes(result.warnings)


def test_estimate_answers_will_it_fit():
    result = check_command(command="sglang generate --model-path qwen-image --dit-cpu-offload false "
                                   "--text-encoder-cpu-offload false --vae-cpu-offload false "
                                   "--dit-layerwise-offload false", hardware="1xRTX4090", sglang_version="0.5.14")
    assert result.estimate is not None and not result.estimate.fits
    assert "may_not_fit" in codes(result.warnings)


def test_serve_lines_are_checked_for_shared_flags():
    result = check_command(command="sglang serve --model-path flux.1-dev --num-gpus 1", hardware="1xH100",
                           sglang_version="0.5.23")
    assert "serve_command" in codes(result.warnings)


@pytest.mark.parametrize("kwargs, code", [
    (dict(command="sglang generate --model-path flux.1-dev", hardware="8xMI300X"), "hardware_not_supported"),
    (dict(command="sglang generate 'unterminated", hardware="1xH100"), "bad_command"),
    (dict(), "bad_input"),
    (dict(command="sglang version", hardware="1xH100"), "not_generate"),
])
def test_bad_input_is_an_actionable_error(kwargs, code):
    with pytest.raises(ToolInputError) as info:
        check_command(**kwargs)
    assert info.value.problem.code == code and info.value.problem.fix


MODELS = ["wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.2-t2v-a14b", "wan2.2-ti2v-5b", "flux.1-dev", "flux.2-dev",
          "qwen-image", "z-image-turbo", "hunyuanvideo", "sd3.5-large", "ltx-2"]
HARDWARE = ["1xRTX4090", "1xRTX5090", "1xL40S", "2xL40S", "1xA100-80GB", "1xH100", "2xH100", "4xH100", "8xH100",
            "1xH200", "8xH200", "4xB200"]
VERSIONS = ["0.5.9", "0.5.10.post1", "0.5.11", "0.5.12", "0.5.14", "0.5.17", "0.5.18", "0.5.20", "0.5.23"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(MODELS), hardware=st.sampled_from(HARDWARE), version=st.sampled_from(VERSIONS),
       objective=st.sampled_from(["speed", "memory", "balanced"]), lossy=st.booleans(),
       budget_share=st.sampled_from([None, 0.5, 0.8]))
def test_every_recommendation_passes_check_command(model, hardware, version, objective, lossy, budget_share):
    from sglang_diffusion_mcp.tools.hardware_spec import parse_hardware_spec

    budget = None if budget_share is None else round(parse_hardware_spec(hardware).memory_gb * budget_share, 1)
    try:
        result = recommend_flags(model=model, hardware=hardware, sglang_version=version, objective=objective,
                                 allow_lossy=lossy, vram_budget_gb=budget)
    except ToolInputError as exc:  # nothing fits, or every fitting plan breaks a rule: must say so
        assert exc.problem.code in ("nothing_fits", "no_valid_plan") and exc.problem.fix
        return
    checked = check_command(argv=result.argv, hardware=hardware, sglang_version=version, vram_budget_gb=budget)
    assert checked.valid, checked.errors
    assert not checked.warnings, checked.warnings
    assert result.estimate.fits
    for alternative in result.alternatives[:-1]:  # the last is sglang's own choice, judged, not vouched for
        alt = check_command(argv=alternative.argv, hardware=hardware, sglang_version=version, vram_budget_gb=budget)
        assert alt.valid, (alternative.label, alt.errors)
