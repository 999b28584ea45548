"""Knowledge base validation: every kind loads, links resolve, stale rows explain themselves, the seed is
fully covered, spellings agree with the recipes, and the declarative rules and capability gates behave."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sglang_diffusion_mcp.knowledge import loader
from sglang_diffusion_mcp.knowledge.schema import KINDS
from sglang_diffusion_mcp.knowledge.schema.option import cc_allows
from sglang_diffusion_mcp.knowledge.schema.rule import FACTS, check_expression, evaluate

SEED = Path(__file__).parent / "fixtures" / "seed" / "sglang-diffusion-performance.SKILL.md"
# Releases the wheels were read for; recipes and spellings are checked against each.
VERSIONS = ["0.5.6", "0.5.8", "0.5.9", "0.5.10", "0.5.10.post1", "0.5.11", "0.5.12", "0.5.13", "0.5.14",
            "0.5.15", "0.5.16", "0.5.17", "0.5.18", "0.5.19", "0.5.20", "0.5.21", "0.5.22", "0.5.23"]
NEWEST = VERSIONS[-1]


def options():
    return loader.load("options")


def option(entry_id):
    entry = loader.get("options", entry_id)
    assert entry is not None, entry_id
    return entry


def rule(entry_id):
    entry = loader.get("rules", entry_id)
    assert entry is not None, entry_id
    return entry


# ------------------------------------------------------------------ loading and links

@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_loads(kind):
    assert isinstance(loader.load(kind), tuple)


@pytest.mark.parametrize("kind", ["options", "rules", "recipes", "tips", "evidence", "fast_paths"])
def test_owned_kinds_are_not_empty(kind):
    assert len(loader.load(kind)) > 0


def test_no_broken_links():
    assert loader.broken_links() == []


def test_requirement_and_alternative_links_resolve():
    option_ids = {o.id for o in options()}
    recipe_ids = {r.id for r in loader.load("recipes")}
    bad = [f"{o.id} needs {n}" for o in options() for n in o.requires.needs_options if n not in option_ids]
    bad += [f"{r.id} alt {r.alternative_to}" for r in loader.load("recipes")
            if r.alternative_to and r.alternative_to not in recipe_ids]
    bad += [f"rule {r.id} suggests {k}" for r in loader.load("rules") for k in r.suggest if k not in option_ids]
    assert bad == []


def test_rule_and_recipe_option_links_point_at_options():
    option_ids = {o.id for o in options()}
    for kind in ("rules", "recipes", "tips"):
        for entry in loader.load(kind):
            assert set(entry.options) <= option_ids, (kind, entry.id, set(entry.options) - option_ids)


# ------------------------------------------------------------------ stale rows and sources

@pytest.mark.parametrize("kind", sorted(KINDS))
def test_stale_entries_have_reason_and_successor(kind):
    for entry in loader.load(kind):
        if entry.stale:
            assert entry.stale_reason.strip(), (kind, entry.id)
            assert entry.superseded_by, (kind, entry.id)


@pytest.mark.parametrize("kind", ["options", "recipes", "tips"])
def test_closed_release_ranges_are_marked_stale(kind):
    # A seed row that ends before the newest release no longer holds there, so it must say what replaced it.
    for entry in loader.load(kind):
        if entry.releases.until and not entry.releases.contains(NEWEST):
            assert entry.stale, (kind, entry.id)


def test_every_option_has_source_and_spelling():
    for opt in options():
        assert opt.sources, opt.id
        if opt.kind == "automatic":  # no flag to spell; sglang decides, so say when
            assert opt.default_on, opt.id
            continue
        assert opt.spellings, opt.id


def test_seed_rows_cite_the_seed_with_upstream_url():
    for kind in ("options", "recipes", "tips"):
        for entry in loader.load(kind):
            seed_sources = [s for s in entry.sources if s.kind == "seed"]
            for source in seed_sources:
                assert source.ref.startswith("sglang-diffusion-performance SKILL.md, ")
                assert "github.com/sgl-project/sglang" in source.note


def test_seed_sentences_are_not_copied_into_summaries():
    seed = SEED.read_text(encoding="utf-8")
    for kind in ("options", "tips", "recipes"):
        for entry in loader.load(kind):
            for text in (entry.summary, getattr(entry, "effect", ""), getattr(entry, "advice", "")):
                # any 12-word run copied verbatim counts as copying
                words = text.split()
                runs = [" ".join(words[i:i + 12]) for i in range(max(0, len(words) - 11))]
                assert not any(run in seed for run in runs), (kind, entry.id, text)


# ------------------------------------------------------------------ seed coverage

def _seed_names():
    text = SEED.read_text(encoding="utf-8")
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*", text))
    # env vars: UPPER_CASE with an underscore, not placeholders like <IMAGE_MODEL>
    envs = set(re.findall(r"(?<![<\w])[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9](?![>\w])", text))
    return flags, envs


def test_seed_extraction_finds_the_known_names():
    flags, envs = _seed_names()
    assert {"--enable-torch-compile", "--dit-layerwise-offload", "--ulysses-degree", "--cache-dit-config"} <= flags
    assert {"SGLANG_CACHE_DIT_ENABLED", "HF_TOKEN", "FLASHINFER_DISABLE_VERSION_CHECK"} <= envs
    assert len(flags) >= 35


def test_every_seed_flag_and_env_var_has_an_option():
    flags, envs = _seed_names()
    named = {n for o in options() for n in o.names}
    named |= {a for o in options() for s in o.spellings for a in s.aliases}
    assert sorted((flags | envs) - named) == []


def test_brief_options_exist():
    for entry_id in ["torch_compile", "warmup", "warmup_resolutions", "sequence_parallel", "cfg_parallel",
                     "dit_layerwise_offload", "dit_offload_prefetch_size", "fsdp_inference",
                     "text_encoder_cpu_offload", "image_encoder_cpu_offload", "vae_cpu_offload",
                     "dit_cpu_offload", "pin_cpu_memory", "attn_fa", "attn_torch_sdpa", "attn_sage_attn",
                     "attn_sage_attn_3", "attn_sliding_tile_attn", "attn_video_sparse_attn",
                     "attn_sparse_video_gen_2_attn", "attn_vmoba_attn", "attn_sla_attn", "attn_sage_sla_attn",
                     "parallel_folding", "cache_dit", "svdquant", "quantization_precision", "quantization_rank",
                     "pre_quantized_weights", "dit_precision", "vae_precision", "num_inference_steps", "backend",
                     "perf_dump_path", "flashinfer_disable_version_check", "hf_token", "sync_stage_profiling",
                     "performance_mode", "component_residency", "cpu_offload_components",
                     "layerwise_offload_components", "warmup_mode", "tensor_parallel", "sp_degree", "num_gpus"]:
        option(entry_id)


# ------------------------------------------------------------------ spellings per release

def test_spellings_lie_inside_the_entry_range_and_do_not_overlap():
    for opt in options():
        for s in opt.spellings:
            for v in VERSIONS:
                if s.releases.contains(v):
                    assert opt.releases.contains(v), (opt.id, s.flag, v)
        for v in VERSIONS:
            live = [s.flag for s in opt.spellings if s.releases.contains(v) and s.style != "removed"]
            assert len(live) == len(set(live)), (opt.id, v, live)


@pytest.mark.parametrize(("entry_id", "version", "flag", "style"), [
    ("cfg_parallel", "0.5.10", "--enable-cfg-parallel", "switch"),
    ("cfg_parallel", "0.5.11", "--enable-cfg-parallel", "switch"),
    ("cfg_parallel", "0.5.12", "--enable-cfg-parallel", "bool_value"),
    ("warmup", "0.5.9", "--warmup", "bool_value"),
    ("warmup", "0.5.13", "--warmup", "bool_value"),
    ("warmup", "0.5.14", "--warmup-mode", "value"),
    ("warmup", "0.5.23", "--warmup-mode", "value"),
    ("performance_mode", "0.5.12", "--performance-mode", "value"),
    ("attn_sage_attn_3", "0.5.6", "--attention-backend", "value"),
    ("cache_dit", "0.5.9", "SGLANG_CACHE_DIT_ENABLED", "env"),
])
def test_spelling_for_release(entry_id, version, flag, style):
    spelling = option(entry_id).spelling_for(version)
    assert spelling is not None and (spelling.flag, spelling.style) == (flag, style)


@pytest.mark.parametrize(("entry_id", "absent_in", "present_in"), [
    ("performance_mode", "0.5.11", "0.5.12"),
    ("warmup_mode", "0.5.13", "0.5.14"),
    ("layerwise_offload_components", "0.5.12", "0.5.13"),
    ("component_residency", "0.5.17", "0.5.18"),
    ("cpu_offload_components", "0.5.17", "0.5.18"),
    ("dit_offload_prefetch_size", "0.5.8", "0.5.9"),
    ("pre_quantized_weights", "0.5.9", "0.5.10"),
    ("cache_dit_request", "0.5.18", "0.5.19"),
])
def test_version_boundaries(entry_id, absent_in, present_in):
    opt = option(entry_id)
    assert opt.spelling_for(absent_in) is None
    assert opt.spelling_for(present_in) is not None


def test_warmup_flag_is_removed_from_0_5_18():
    spellings = [s for s in option("warmup").spellings if s.flag == "--warmup" and s.releases.contains("0.5.18")]
    assert [s.style for s in spellings] == ["removed"]


def test_snapshot_offload_mode_appears_in_0_5_20():
    opt = option("component_residency")
    assert "snapshot-offload" not in opt.spelling_for("0.5.19").choices
    assert "snapshot-offload" in opt.spelling_for("0.5.20").choices


# ------------------------------------------------------------------ recipes agree with the spellings

def _spelling_index(version):
    index = {}
    for opt in options():
        for s in opt.spellings:
            if s.releases.contains(version):
                for name in [s.flag, *s.aliases]:
                    index.setdefault(name, s)
    return index


@pytest.mark.parametrize("version", ["0.5.9", "0.5.10", "0.5.12", "0.5.14", "0.5.18", "0.5.23"])
def test_recipe_commands_use_flags_that_exist_in_that_release(version):
    index = _spelling_index(version)
    for recipe in loader.load("recipes"):
        argv = recipe.argv_for(version)
        if argv is None:
            continue
        assert argv[:2] == ["sglang", "generate"], recipe.id
        for i, token in enumerate(argv):
            if not token.startswith("--"):
                continue
            name = token.split("=", 1)[0]
            spelling = index.get(name)
            assert spelling is not None and spelling.style != "removed", (recipe.id, version, name)
            following = argv[i + 1] if i + 1 < len(argv) else "--"
            if spelling.style == "switch":
                assert "=" not in token and following.startswith("--"), (recipe.id, version, name)
        for name in recipe.env:
            assert index.get(name) is not None and index[name].style == "env", (recipe.id, name)


def test_stale_lossy_recipe_points_at_native_form():
    stale = loader.get("recipes", "recipe-lossy-sage-cache-dit")
    fixed = loader.get("recipes", "recipe-lossy-sage-cache-dit-native")
    assert stale.stale and fixed.id in stale.superseded_by
    assert "--cache-dit-config" in stale.argv and "--cache-dit-config" not in fixed.argv
    assert fixed.env == {"SGLANG_CACHE_DIT_ENABLED": "true"}


def test_lossy_recipes_use_lossy_options():
    for recipe in loader.load("recipes"):
        uses_lossy = any(option(o).lossy for o in recipe.options)
        assert recipe.lossy == uses_lossy, recipe.id


# ------------------------------------------------------------------ compute-capability gates

@pytest.mark.parametrize(("entry_id", "allowed", "refused"), [
    ("attn_fa", ["8.0", "8.6", "8.9", "9.0", "10.0"], ["7.5", "12.0"]),
    ("attn_sage_attn_3", ["12.0"], ["9.0", "10.0", "8.9"]),
    ("attn_sliding_tile_attn", ["9.0"], ["8.0", "10.0", "12.0"]),
    ("svdquant", ["8.0", "8.6", "8.9", "12.0"], ["9.0", "10.0", "7.5"]),
    ("weights_fp8", ["8.9", "9.0", "12.0"], ["8.0", "8.6"]),
    ("weights_nvfp4", ["10.0", "12.0"], ["9.0", "8.9"]),
])
def test_compute_capability_requirements(entry_id, allowed, refused):
    clauses = option(entry_id).requires.compute_capability
    assert all(cc_allows(clauses, cc) for cc in allowed)
    assert not any(cc_allows(clauses, cc) for cc in refused)


def test_malformed_cc_clause_is_rejected():
    with pytest.raises(ValueError):
        cc_allows([">=eight"], "8.0")


# ------------------------------------------------------------------ rules

BASE_FACTS = {
    "num_gpus": 8, "tp_size": 1, "sp_degree": 4, "ulysses_degree": 4, "ring_degree": 1, "cfg_degree": 2,
    "heads": 40, "attention_backend": "", "uses_cfg": True, "model_cfg_parallel_ok": True,
    "model_family": "wan2.2", "modality": "video", "sm": 90, "dtype": "bf16", "weight_format": "bf16",
    "prequantized_weights": False, "enabled": set(), "prefetch": 0.0, "mask_strategy_file": False,
    "resident_plan_fits": False, "mig": False, "distinct_gpus": 8, "backend": "sglang",
    "version": (0, 5, 23, -1), "warmed_timing": True, "explicit_residency": True, "explicit_parallel": True,
    "performance_mode": "manual",
}


def facts(**changes):
    return {**BASE_FACTS, **changes}


def test_base_facts_cover_the_fact_vocabulary():
    assert set(BASE_FACTS) == set(FACTS)


def test_every_rule_evaluates_and_a_good_plan_violates_none():
    violated = [r.id for r in loader.load("rules") if r.violated(BASE_FACTS)]
    assert violated == []


@pytest.mark.parametrize(("rule_id", "changes"), [
    ("parallel-gpus-multiple-of-degrees", {"sp_degree": 3, "ulysses_degree": 3}),
    ("parallel-sp-equals-ulysses-times-ring", {"ring_degree": 2}),
    ("parallel-ulysses-divides-heads", {"heads": 30}),
    ("parallel-ulysses-divides-heads", {"tp_size": 2, "cfg_degree": 1, "heads": 20, "sp_degree": 4}),
    ("parallel-ring-needs-fa-or-sage", {"ring_degree": 2, "ulysses_degree": 2, "attention_backend": "torch_sdpa"}),
    ("parallel-cfg-needs-two-gpus", {"num_gpus": 1, "sp_degree": 1, "ulysses_degree": 1}),
    ("parallel-cfg-model-support", {"model_cfg_parallel_ok": False}),
    ("parallel-cfg-needs-cfg-request", {"uses_cfg": False}),
    ("exclusion-fsdp-with-layerwise", {"enabled": {"fsdp_inference", "dit_layerwise_offload"}}),
    ("exclusion-layerwise-with-cache-dit", {"enabled": {"cache_dit", "dit_layerwise_offload"}}),
    ("exclusion-cache-dit-config-native", {"enabled": {"cache_dit_config"}}),
    ("capability-fa-sm80-not-sm12x", {"attention_backend": "fa", "sm": 120}),
    ("capability-bf16-sm80", {"sm": 75}),
    ("capability-fp8-sm89", {"weight_format": "fp8", "sm": 86}),
    ("capability-nvfp4-sm10x-sm12x", {"weight_format": "nvfp4", "sm": 90}),
    ("capability-nunchaku-sm8x-sm12x", {"enabled": {"svdquant"}, "prequantized_weights": True,
                                        "model_family": "flux.1", "sm": 90}),
    ("capability-sage-attn-3-sm12x", {"attention_backend": "sage_attn_3", "sm": 100}),
    ("capability-sliding-tile-hopper", {"attention_backend": "sliding_tile_attn", "sm": 90}),
    ("capability-mig-never-pooled", {"mig": True}),
    ("offload-prefer-resident", {"enabled": {"dit_layerwise_offload"}, "resident_plan_fits": True}),
    ("offload-image-prefetch", {"enabled": {"dit_layerwise_offload"}, "modality": "image", "prefetch": 0.0}),
    ("offload-performance-mode-replans", {"performance_mode": "auto"}),
    ("offload-implicit-defaults-legacy", {"version": (0, 5, 9, -1), "explicit_residency": False}),
    ("warmup-compile-needs-warmed-timing", {"enabled": {"torch_compile"}, "warmed_timing": False}),
])
def test_rule_catches_its_case(rule_id, changes):
    assert rule(rule_id).violated(facts(**changes))


@pytest.mark.parametrize(("rule_id", "changes"), [
    ("capability-nunchaku-sm8x-sm12x", {"enabled": {"svdquant"}, "prequantized_weights": True,
                                        "model_family": "qwen-image", "sm": 86}),
    ("capability-sliding-tile-hopper", {"attention_backend": "sliding_tile_attn", "sm": 90,
                                        "mask_strategy_file": True}),
    ("offload-image-prefetch", {"enabled": {"dit_layerwise_offload"}, "modality": "image", "prefetch": 0.1}),
    ("parallel-ring-needs-fa-or-sage", {"ring_degree": 2, "ulysses_degree": 2, "attention_backend": "sage_attn"}),
])
def test_rule_accepts_the_fixed_case(rule_id, changes):
    assert not rule(rule_id).violated(facts(**changes))


def test_layerwise_cache_dit_error_holds_only_before_0_5_19():
    releases = rule("exclusion-layerwise-with-cache-dit").releases
    assert releases.contains("0.5.8") and releases.contains("0.5.18")
    assert not releases.contains("0.5.19")


def test_every_rule_has_message_fix_and_source():
    for r in loader.load("rules"):
        assert r.message and r.fix and r.sources, r.id


@pytest.mark.parametrize("expr", ["__import__('os')", "num_gpus.bit_length()", "unknown_fact > 1",
                                  "open('x')", "[x for x in enabled]", "lambda: 1"])
def test_rule_language_refuses_unsafe_or_unknown(expr):
    with pytest.raises((ValueError, SyntaxError)):
        check_expression(expr)


def test_rule_evaluation_names_missing_facts():
    with pytest.raises(KeyError, match="num_gpus"):
        evaluate("num_gpus > 1", {})


def test_ver_compares_post_releases():
    assert evaluate("ver('0.5.10.post1') > ver('0.5.10')", {})
    assert evaluate("version < ver('0.5.19')", {"version": (0, 5, 18, -1)})
