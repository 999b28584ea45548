"""Models knowledge: every entry is consistent, identification works, the activation estimate matches the H100
calibration."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from sglang_diffusion_mcp.knowledge import activation, loader
from sglang_diffusion_mcp.knowledge.models_lookup import (
    closest_models,
    families,
    family_default,
    identify_model,
)
from sglang_diffusion_mcp.knowledge.schema import version_key
from sglang_diffusion_mcp.tools.problems import ToolInputError

CALIBRATION = Path(__file__).parent / "fixtures" / "calibration"
MODELS = loader.load("models")
BY_ID = {m.id: m for m in MODELS}

REQUIRED = {
    "wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.1-i2v-14b-480p", "wan2.1-i2v-14b-720p", "wan2.2-t2v-a14b",
    "wan2.2-i2v-a14b", "wan2.2-ti2v-5b", "flux.1-dev", "flux.1-schnell", "flux.1-kontext-dev", "flux.2-dev",
    "qwen-image", "qwen-image-edit", "qwen-image-edit-2509", "qwen-image-edit-2511", "z-image-turbo",
    "hunyuanvideo", "ltx-2", "mova-360p", "mova-720p", "sd3.5-medium", "sd3.5-large",
}


def _calibration(name: str) -> list[dict]:
    return [json.loads(line) for line in (CALIBRATION / name).read_text().splitlines() if line.strip()]


# --- the data ---------------------------------------------------------------------------------------------------

def test_required_models_present():
    assert REQUIRED <= set(BY_ID)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.id)
def test_model_fields_consistent(model):
    if model.modality == "video":
        assert model.default_frames > 1 and len(model.vae_stride) == 2 and len(model.patch_size) == 3
    else:
        assert model.default_frames == 1 and len(model.vae_stride) == 1
    assert model.hidden_size == model.attention_heads * model.head_dim or model.id.startswith("sd3.5")
    # the defaults give a whole number of latent patches
    spatial = model.vae_stride[-1] * model.patch_size[-1]
    assert model.default_width % spatial == 0 and model.default_height % spatial == 0
    if model.modality == "video":
        assert (model.default_frames - 1) % model.vae_stride[0] == 0
    # components: names unique, parts add up, the DiT is the largest step-time part
    total = model.component_params_b()
    assert total == pytest.approx(sum(c.params_b for c in model.components))
    assert model.component_params_b(("dit",)) + model.component_params_b(
        ("text_encoder", "image_encoder", "vae", "upsampler", "audio", "other")) == pytest.approx(total)
    assert any(c.role == "text_encoder" for c in model.components)
    assert any(c.role == "vae" for c in model.components)
    # inputs and guidance
    if model.task in ("i2v", "edit", "i2av"):
        assert model.needs_image and model.max_input_images >= 1
    if model.needs_image:
        assert model.accepts_image
    if model.cfg != "true_cfg":
        assert model.default_guidance is None or model.default_guidance <= 4.0
    if model.condition_image_tokens:
        assert model.accepts_image
    assert model.moe_experts == sum(1 for c in model.components if c.role == "dit" and not c.optional
                                    and c.name.startswith(("transformer", "video_dit"))) or model.moe_experts == 1
    assert model.hf_ids[0].count("/") == 1
    assert model.sources and all(s.ref for s in model.sources)
    if model.activation_basis == "measured":
        assert any(s.kind == "measured" for s in model.sources)


def test_one_family_default_per_family():
    for family in families():
        defaults = [m.id for m in MODELS if m.family == family and m.family_default]
        assert len(defaults) == 1, (family, defaults)
        assert family_default(family).family == family


def test_known_facts():
    assert BY_ID["flux.1-dev"].gated and BY_ID["flux.2-dev"].gated
    assert BY_ID["flux.1-dev"].cfg == "distilled" and BY_ID["wan2.1-t2v-14b"].cfg == "true_cfg"
    assert BY_ID["z-image-turbo"].cfg == "none" and BY_ID["z-image-turbo"].default_steps == 9
    wan = BY_ID["wan2.1-t2v-14b"]
    umt5 = next(c for c in wan.components if c.name == "text_encoder")
    assert umt5.params_b == pytest.approx(5.7, rel=0.02) and umt5.dtype == "fp32"
    t5 = next(c for c in BY_ID["flux.1-dev"].components if c.name == "text_encoder_2")
    assert t5.params_b == pytest.approx(4.7, rel=0.03)
    assert BY_ID["wan2.2-t2v-a14b"].moe_experts == 2
    assert BY_ID["flux.2-dev"].attention_heads == 48 and BY_ID["wan2.1-t2v-1.3b"].attention_heads == 12
    assert BY_ID["ltx-2"].vae_stride == [8, 32] and BY_ID["wan2.2-ti2v-5b"].vae_stride == [4, 16]
    assert not BY_ID["flux.1-kontext-dev"].sglang_native
    assert BY_ID["mova-720p"].needs_image and BY_ID["mova-720p"].outputs_audio


def test_weights_match_calibration():
    """Measured DiT weights (bf16) agree with the transformer parameter counts in the data."""
    for row in _calibration("dit-forward-h100.jsonl"):
        model = identify_model(row["model"]).model
        dit = next(c for c in model.components if c.name == "transformer")
        assert dit.params_b * 1e9 * 2 / 1024**3 == pytest.approx(row["weights_gib"], rel=0.01)


def test_defaults_by_release():
    a14b = BY_ID["wan2.2-t2v-a14b"]
    assert a14b.defaults_for("0.5.9")["frames"] == 1
    assert a14b.defaults_for("0.5.10")["frames"] == 81
    assert BY_ID["flux.1-dev"].defaults_for("0.5.10.post1")["guidance"] == 1.0
    assert BY_ID["flux.1-dev"].defaults_for("0.5.11")["guidance"] == 3.5
    assert BY_ID["z-image-turbo"].defaults_for("0.5.14")["width"] == 1280
    assert BY_ID["z-image-turbo"].defaults_for(None)["width"] == 1024
    assert version_key(BY_ID["ltx-2"].releases.since) == version_key("0.5.10")


# --- identification ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected", "how"), [
    ("Wan-AI/Wan2.1-T2V-14B-Diffusers", "wan2.1-t2v-14b", "hf_id"),
    ("wan-ai/wan2.1-t2v-1.3b-diffusers", "wan2.1-t2v-1.3b", "hf_id"),
    ("  Wan-AI/Wan2.2-I2V-A14B-Diffusers/ ", "wan2.2-i2v-a14b", "hf_id"),
    ("Wan2.1-T2V-1.3B", "wan2.1-t2v-1.3b", "short_name"),
    ("Wan-AI/Wan2.2-TI2V-5B", "wan2.2-ti2v-5b", "hf_id"),
    ("FLUX.1-dev", "flux.1-dev", "short_name"),
    ("flux-dev", "flux.1-dev", "alias"),
    ("Flux1 Dev", "flux.1-dev", "short_name"),
    ("black-forest-labs/flux.1-schnell", "flux.1-schnell", "hf_id"),
    ("https://huggingface.co/Qwen/Qwen-Image-Edit-2509", "qwen-image-edit-2509", "hf_id"),
    ("qwen-edit-2511", "qwen-image-edit-2511", "alias"),
    ("z-image", "z-image-turbo", "alias"),
    ("hunyuan", "hunyuanvideo", "alias"),
    ("ltx2", "ltx-2", "short_name"),
    ("mova-720p", "mova-720p", "short_name"),
    ("sd3.5-medium", "sd3.5-medium", "alias"),
    ("stabilityai/stable-diffusion-3.5-large-diffusers", "sd3.5-large", "hf_id"),
    ("black-forest-labs/FLUX.2-dev-NVFP4", "flux.2-dev", "hf_id"),
    ("someone/FLUX.2-dev-fp8", "flux.2-dev", "variant"),
    ("/data/hub/models--Qwen--Qwen-Image/snapshots/0123abc", "qwen-image", "hf_id"),
])
def test_identify_by_name(query, expected, how):
    match = identify_model(query)
    assert match.model.id == expected
    assert match.matched_by == how
    assert match.hf_id in match.model.hf_ids or how == "variant"


def test_variant_keeps_the_given_id_and_warns():
    match = identify_model("someone/FLUX.2-dev-fp8")
    assert match.hf_id == "someone/FLUX.2-dev-fp8"
    assert any("variant" in w for w in match.warnings)


def test_lookalikes_are_not_matched():
    for name in ("tencent/HunyuanVideo-1.5", "stabilityai/stable-diffusion-3.5-large-turbo"):
        with pytest.raises(ToolInputError) as err:
            identify_model(name)
        assert err.value.problem.code == "unknown_model"


def test_unknown_model_error_lists_five_and_explains_family():
    with pytest.raises(ToolInputError) as err:
        identify_model("tencent/HunyuanVideo-1.5")
    problem = err.value.problem
    assert problem.code == "unknown_model" and problem.flag == "model"
    listed = problem.message.split("Closest known: ")[1].rstrip(".").split(", ")
    assert len(listed) == 5 and listed[0] == "hunyuanvideo-community/HunyuanVideo"
    assert "`family`" in problem.fix and "wan2.2" in problem.fix and "flux.1" in problem.fix
    assert closest_models("Wan2.1-T2V-13B")[0].startswith("Wan-AI/Wan2.1-T2V-1.3B")


def test_unknown_model_borrows_family_defaults():
    match = identify_model("my-org/my-wan-finetune", family="wan2.2")
    assert match.matched_by == "family" and match.model.id == "wan2.2-t2v-a14b"
    assert match.hf_id == "my-org/my-wan-finetune" and match.warnings
    assert identify_model("x/y", family="FLUX.1").model.id == "flux.1-dev"


def test_bad_family_and_empty_model():
    with pytest.raises(ToolInputError) as err:
        identify_model("x/y", family="sdxl")
    assert err.value.problem.code == "unknown_family" and "wan2.1" in err.value.problem.fix
    for bad in ("", "   "):
        with pytest.raises(ToolInputError):
            identify_model(bad)


def test_known_model_with_other_family_warns():
    match = identify_model("flux-dev", family="wan2.1")
    assert match.model.id == "flux.1-dev" and any("Ignored family" in w for w in match.warnings)


def _fake_folder(root: Path, name: str, class_name: str, transformer: dict | None = None,
                 extra: dict | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    index = {"_class_name": class_name, "_diffusers_version": "0.35.0", "vae": ["diffusers", "AutoencoderKL"],
             "transformer": ["diffusers", "Transformer"], **(extra or {})}
    (folder / "model_index.json").write_text(json.dumps(index))
    if transformer is not None:
        (folder / "transformer").mkdir()
        (folder / "transformer" / "config.json").write_text(json.dumps(transformer))
    return folder


@pytest.mark.parametrize(("class_name", "transformer", "extra", "expected"), [
    ("WanPipeline", {"num_attention_heads": 12, "num_layers": 30, "in_channels": 16}, {}, "wan2.1-t2v-1.3b"),
    ("WanPipeline", {"num_attention_heads": 40, "num_layers": 40, "in_channels": 16},
     {"transformer_2": [None, None]}, "wan2.1-t2v-14b"),
    ("WanPipeline", {"num_attention_heads": 40, "num_layers": 40, "in_channels": 16},
     {"transformer_2": ["diffusers", "WanTransformer3DModel"]}, "wan2.2-t2v-a14b"),
    ("WanPipeline", {"num_attention_heads": 24, "num_layers": 30, "in_channels": 48}, {}, "wan2.2-ti2v-5b"),
    ("WanImageToVideoPipeline", {"num_attention_heads": 40, "in_channels": 36, "image_dim": None},
     {"transformer_2": ["diffusers", "WanTransformer3DModel"]}, "wan2.2-i2v-a14b"),
    ("FluxPipeline", {"guidance_embeds": False, "num_layers": 19}, {}, "flux.1-schnell"),
    ("FluxPipeline", {"guidance_embeds": True, "num_layers": 19}, {}, "flux.1-dev"),
    ("QwenImagePipeline", None, {}, "qwen-image"),
    ("ZImagePipeline", None, {}, "z-image-turbo"),
    ("StableDiffusion3Pipeline", {"num_layers": 24}, {}, "sd3.5-medium"),
    ("LTX2Pipeline", None, {}, "ltx-2"),
])
def test_identify_local_folder_by_config(tmp_path, class_name, transformer, extra, expected):
    folder = _fake_folder(tmp_path, "checkpoint", class_name, transformer, extra)
    match = identify_model(str(folder))
    assert match.model.id == expected and match.matched_by == "local_folder"
    assert match.local_path == str(folder)


def test_identify_local_folder_by_name(tmp_path):
    folder = _fake_folder(tmp_path, "Wan2.1-I2V-14B-720P-Diffusers", "WanImageToVideoPipeline",
                          {"num_attention_heads": 40, "in_channels": 36, "image_dim": 1280})
    assert identify_model(str(folder)).model.id == "wan2.1-i2v-14b-720p"
    # the same config under an anonymous name is ambiguous between 480P and 720P: a warning says so
    anon = _fake_folder(tmp_path, "ckpt", "WanImageToVideoPipeline",
                        {"num_attention_heads": 40, "in_channels": 36, "image_dim": 1280},
                        {"image_encoder": ["transformers", "CLIPVisionModel"]})
    match = identify_model(str(anon))
    assert match.model.family == "wan2.1" and match.model.needs_image and match.warnings


def test_folder_name_cannot_override_pipeline_class(tmp_path):
    folder = _fake_folder(tmp_path, "flux-dev", "ZImagePipeline")
    assert identify_model(str(folder)).model.id == "z-image-turbo"


def test_local_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ToolInputError) as err:
        identify_model(str(empty))
    assert err.value.problem.code == "not_a_diffusers_folder"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text("{not json")
    with pytest.raises(ToolInputError) as err:
        identify_model(str(broken))
    assert err.value.problem.code == "bad_model_index"
    other = _fake_folder(tmp_path, "sdxl", "StableDiffusionXLPipeline")
    with pytest.raises(ToolInputError) as err:
        identify_model(str(other))
    assert err.value.problem.code == "unknown_model" and "StableDiffusionXLPipeline" in err.value.problem.message
    assert identify_model(str(other), family="sd3.5").matched_by == "family"


# --- tokens and activation --------------------------------------------------------------------------------------

def test_token_count_matches_calibration_tokens():
    for row in _calibration("dit-forward-h100.jsonl"):
        model = identify_model(row["model"]).model
        h, w, *f = row["shape"]
        assert activation.model_token_count(model, width=w, height=h, frames=f[0] if f else 1).total == row["tokens"]


def test_token_count_shapes():
    wan = BY_ID["wan2.1-t2v-14b"]
    t = activation.model_token_count(wan)  # 1280x720x81
    assert (t.latent_frames, t.latent_height, t.latent_width, t.total) == (21, 45, 80, 75600)
    ltx = activation.model_token_count(BY_ID["ltx-2"])  # 768x512x121, 8x32x32, patch 1
    assert ltx.total == 16 * 16 * 24
    edit = activation.model_token_count(BY_ID["qwen-image-edit"], width=1024, height=1024)
    assert edit.condition_tokens == edit.visual_tokens == 4096 and edit.total == 4096 * 2 + 256
    plus = activation.model_token_count(BY_ID["qwen-image-edit-2509"], width=1024, height=1024, condition_images=3)
    assert plus.condition_tokens == 3 * 4096
    i2v = activation.model_token_count(BY_ID["wan2.2-i2v-a14b"], condition_images=1)
    assert i2v.condition_tokens == 0  # image enters through channels, not tokens
    with pytest.raises(ValueError):
        activation.token_count(0, 480, 832, [4, 8], [1, 2, 2])


def test_activation_within_20_percent_of_calibration():
    errors = []
    for row in _calibration("dit-forward-h100.jsonl"):
        model = identify_model(row["model"]).model
        h, w, *f = row["shape"]
        est = activation.estimate_activation(model, width=w, height=h, frames=f[0] if f else 1)
        measured = row["peak_alloc_gib"] - row["weights_gib"]
        err = est.activation_gb / measured - 1
        errors.append(abs(err))
        assert abs(err) <= 0.20, (row["model"], row["shape"], est.activation_gb, measured)
    print(f"\nactivation estimate vs H100 calibration: median |error| {statistics.median(errors):.1%}, "
          f"max {max(errors):.1%} over {len(errors)} points")


def test_allocator_overhead_reported():
    errors = []
    for row in _calibration("dit-forward-h100.jsonl"):
        model = identify_model(row["model"]).model
        h, w, *f = row["shape"]
        est = activation.estimate_activation(model, width=w, height=h, frames=f[0] if f else 1)
        errors.append(abs(est.allocator_overhead_gb / (row["peak_reserved_gib"] - row["peak_alloc_gib"]) - 1))
    print(f"\nallocator overhead vs calibration: median |error| {statistics.median(errors):.1%}, "
          f"max {max(errors):.1%}")
    assert statistics.median(errors) < 0.2


def test_repeat_run_agrees_on_memory():
    first, repeat = _calibration("dit-forward-h100.jsonl"), _calibration("dit-forward-h100-repeat.jsonl")
    for a, b in zip(first, repeat, strict=True):
        assert (a["model"], a["shape"]) == (b["model"], b["shape"])
        assert a["peak_alloc_gib"] == pytest.approx(b["peak_alloc_gib"], rel=0.005)


def test_activation_scaling():
    wan = BY_ID["wan2.1-t2v-14b"]
    one = activation.estimate_activation(wan)
    sp4 = activation.estimate_activation(wan, sp_degree=4)
    assert sp4.tokens_per_gpu == one.tokens_per_gpu // 4
    assert sp4.activation_gb == pytest.approx((one.activation_gb - 0.036) / 4 + 0.036, rel=0.02)
    batched = activation.estimate_activation(wan, cfg_batched=True)
    assert batched.activation_gb > 1.9 * one.activation_gb
    flux = BY_ID["flux.1-dev"]  # distilled: no negative branch to batch
    assert activation.estimate_activation(flux, cfg_batched=True).activation_gb == \
        activation.estimate_activation(flux).activation_gb
    assert one.allocator_overhead_gb > 0 and one.basis == "measured"
    with pytest.raises(ValueError):
        activation.activation_gib(1000, 0.1, sp_degree=0)
