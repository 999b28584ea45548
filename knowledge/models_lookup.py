"""Identify a model from what a user types: a Hugging Face id, a short alias, or a local diffusers folder.

Pure lookups over knowledge/data/models.yaml; a local folder is read offline (model_index.json and
transformer/config.json only). Unknown input raises ToolInputError with the closest known models.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..tools.problems import ToolInputError
from . import loader
from .schema.model import Model

MatchKind = Literal["hf_id", "short_name", "alias", "variant", "local_folder", "family"]

# Suffixes of repos that hold the same model in another packaging or precision.
_VARIANT_SUFFIXES = ("-diffusers", "-nvfp4", "-fp8", "-fp4", "-bf16", "-fp16", "-int8", "-gguf", "-awq", "-sdnq")
_HF_URL = re.compile(r"^(?:https?://)?(?:www\.)?(?:hf\.co|huggingface\.co)/", re.I)
_CACHE_DIR = re.compile(r"models--([^/\\]+?)--([^/\\]+)")


class ModelMatch(BaseModel):
    """A known model and how the input was matched to it."""

    model: Model
    matched_by: MatchKind
    query: str = Field(description="The input as given.")
    hf_id: str = Field(description="The Hugging Face id to pass to sglang (the matched variant, or canonical).")
    local_path: str | None = None
    warnings: list[str] = Field(default_factory=list)


def models() -> tuple[Model, ...]:
    return loader.load("models")  # type: ignore[return-value]


def families() -> list[str]:
    return sorted({m.family for m in models()})


def family_default(family: str) -> Model | None:
    """The entry an unknown model of this family borrows its defaults from."""
    key = _compact(family)
    for m in models():
        if m.family_default and _compact(m.family) == key:
            return m
    return None


def _compact(text: str) -> str:
    """Lowercase, without separators, so 'FLUX.1-dev', 'flux1_dev' and 'Flux 1 Dev' compare equal."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _short(hf_id: str) -> str:
    return hf_id.rstrip("/").rsplit("/", 1)[-1]


def _strip_variant(name: str) -> str:
    lowered = name.lower()
    changed = True
    while changed:
        changed = False
        for suffix in _VARIANT_SUFFIXES:
            if lowered.endswith(suffix) and len(lowered) > len(suffix):
                lowered, changed = lowered[: -len(suffix)], True
    return lowered


@cache
def _index() -> dict[str, dict[str, Model]]:
    """Lookup tables: exact lowercase id, compact short name, compact alias."""
    by_id: dict[str, Model] = {}
    by_short: dict[str, Model] = {}
    by_alias: dict[str, Model] = {}
    for m in models():
        for hf_id in m.hf_ids:
            by_id.setdefault(hf_id.lower(), m)
            by_short.setdefault(_compact(_short(hf_id)), m)
            by_short.setdefault(_compact(_strip_variant(_short(hf_id))), m)
        for alias in [m.id, *m.aliases]:
            by_alias.setdefault(_compact(alias), m)
    return {"id": by_id, "short": by_short, "alias": by_alias}


def _canonical_for(model: Model, text: str) -> str:
    """The registered id that matches the text exactly, else the canonical one."""
    for hf_id in model.hf_ids:
        if hf_id.lower() == text.lower():
            return hf_id
    return model.hf_ids[0]


def _match_name(text: str) -> tuple[Model, MatchKind] | None:
    """Match a name (no filesystem): exact id, short name, alias, then packaging/precision variants."""
    idx = _index()
    name = _HF_URL.sub("", text.strip()).strip("/")
    name = re.sub(r"/(tree|blob|resolve)/.*$", "", name)
    cache_dir = _CACHE_DIR.search(name)
    if cache_dir:  # a Hugging Face cache path: models--org--name/snapshots/<hash>
        name = f"{cache_dir.group(1)}/{cache_dir.group(2)}"
    if name.lower() in idx["id"]:
        return idx["id"][name.lower()], "hf_id"
    short = _short(name)
    if _compact(short) in idx["short"]:
        return idx["short"][_compact(short)], "short_name"
    if _compact(name) in idx["alias"]:
        return idx["alias"][_compact(name)], "alias"
    if _compact(short) in idx["alias"]:
        return idx["alias"][_compact(short)], "alias"
    base = _compact(_strip_variant(short))
    if base != _compact(short) and (base in idx["short"] or base in idx["alias"]):
        return idx["short"].get(base) or idx["alias"][base], "variant"
    # Like sglang's registry: a registered repo name inside a longer name (a fine-tune or a renamed copy).
    contained = [key for key, m in idx["short"].items() if len(key) >= 8 and key in _compact(short)
                 and not any(_compact(x) in _compact(short) for x in m.not_matching)]
    if contained:
        return idx["short"][max(contained, key=len)], "variant"
    return None


def closest_models(text: str, limit: int = 5) -> list[str]:
    """Canonical ids of the known models whose names look most like the text, best first."""
    query = _compact(_short(_HF_URL.sub("", text.strip()).strip("/")) or text)
    scored: dict[str, float] = {}
    for m in models():
        names = [m.id, *m.aliases, *(_short(h) for h in m.hf_ids)]
        score = max(difflib.SequenceMatcher(None, query, _compact(n)).ratio() for n in names)
        scored[m.hf_ids[0]] = max(score, scored.get(m.hf_ids[0], 0.0))
    return [hf for hf, _ in sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _folder_facts(folder: Path) -> tuple[str, dict[str, Any]]:
    """The folder's pipeline class and the values config_signature compares against."""
    index = _read_json(folder / "model_index.json")
    facts: dict[str, Any] = dict(_read_json(folder / "transformer" / "config.json"))
    for key, value in index.items():
        if not key.startswith("_"):
            # diffusers writes [library, class] for a present component and [null, null] for an absent one
            present = isinstance(value, list) and len(value) == 2 and value[0] is not None
            facts[f"has_{key}"] = present
    facts.setdefault("has_transformer_2", False)
    facts.setdefault("has_image_encoder", False)
    return str(index.get("_class_name", "")), facts


def _signature_score(model: Model, facts: dict[str, Any]) -> int | None:
    """Number of signature values the folder matches; None if one contradicts it."""
    score = 0
    for key, want in model.config_signature.items():
        if key not in facts:
            continue
        if facts[key] != want:
            return None
        score += 1
    return score


def identify_local_folder(path: str) -> ModelMatch:
    """Identify a local diffusers folder offline from its name, model_index.json and transformer config."""
    folder = Path(path).expanduser()
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise ToolInputError(
            "not_a_diffusers_folder", f"{path!r} is a folder without a model_index.json, so it is not a diffusers "
            "pipeline folder.", "Pass the folder that holds model_index.json (for a Hugging Face cache, the "
            "snapshots/<hash> folder), or a Hugging Face id.", flag="model")
    class_name, facts = _folder_facts(folder)
    if not class_name:
        raise ToolInputError("bad_model_index", f"{index_file} has no readable _class_name.",
                             "Check that model_index.json is valid JSON with a _class_name.", flag="model")
    candidates = [m for m in models() if m.pipeline_class.lower() == class_name.lower()]
    by_name = _match_name(str(folder.resolve())) or _match_name(folder.name)
    warnings: list[str] = []
    if by_name and (not candidates or by_name[0] in candidates):
        model = by_name[0]
    elif candidates:
        scored = [(s, m) for m in candidates if (s := _signature_score(m, facts)) is not None]
        if not scored:
            raise _unknown(folder.name, f"its pipeline {class_name} matches no known configuration")
        best = max(s for s, _ in scored)
        tied = [m for s, m in scored if s == best]
        model = next((m for m in tied if m.family_default), tied[0])
        if len(tied) > 1:
            warnings.append(f"{class_name} with this configuration fits {', '.join(m.id for m in tied)}; picked "
                            f"{model.id}. Name the model to choose another.")
    else:
        raise _unknown(folder.name, f"its pipeline class {class_name} is not one sglang-diffusion-mcp knows")
    if class_name.lower() != model.pipeline_class.lower():
        warnings.append(f"model_index.json says {class_name}, but {model.id} uses {model.pipeline_class}.")
    return ModelMatch(model=model, matched_by="local_folder", query=path, hf_id=model.hf_ids[0],
                      local_path=str(folder), warnings=warnings)


def _unknown(text: str, why: str = "") -> ToolInputError:
    close = closest_models(text)
    return ToolInputError(
        "unknown_model",
        f"Unknown model {text!r}" + (f" ({why})" if why else "") + f". Closest known: {', '.join(close)}.",
        f"Pass one of those ids, or keep your model and add `family` (one of: {', '.join(families())}) to borrow "
        "that family's defaults and shapes.",
        flag="model")


def identify_model(model: str, family: str | None = None) -> ModelMatch:
    """Identify `model` (HF id, alias or local diffusers folder); `family` lets an unknown model borrow defaults.

    Raises ToolInputError('unknown_model' | 'unknown_family' | 'not_a_diffusers_folder' | 'bad_model_index').
    """
    if not isinstance(model, str) or not model.strip():
        raise ToolInputError("missing_model", "No model was given.",
                             "Pass a Hugging Face id such as Wan-AI/Wan2.1-T2V-14B-Diffusers, a short name such "
                             "as flux-dev, or a local diffusers folder.", flag="model")
    text = model.strip()
    family_entry = None
    if family is not None and str(family).strip():
        family_entry = family_default(str(family))
        if family_entry is None:
            raise ToolInputError("unknown_family", f"Unknown model family {family!r}.",
                                 f"Use one of: {', '.join(families())}.", flag="family")
    try:
        looks_local = Path(text).expanduser().is_dir()
    except (OSError, ValueError):
        looks_local = False
    if looks_local:
        try:
            match = identify_local_folder(text)
        except ToolInputError as exc:
            if family_entry is None or exc.problem.code != "unknown_model":
                raise
            return _borrowed(text, family_entry, local_path=str(Path(text).expanduser()))
    else:
        found = _match_name(text)
        if found is None:
            if family_entry is None:
                raise _unknown(text)
            return _borrowed(text, family_entry)
        match = ModelMatch(model=found[0], matched_by=found[1], query=model, hf_id=_canonical_for(found[0], text))
        if found[1] == "variant":
            match.hf_id = _HF_URL.sub("", text).strip("/") if "/" in text else found[0].hf_ids[0]
            match.warnings.append(f"{text!r} looks like a variant (repackaged, quantized or "
                                  f"fine-tuned) of {found[0].hf_ids[0]}; its shapes and defaults are used, weight "
                                  "sizes may differ.")
    if family_entry is not None and _compact(family_entry.family) != _compact(match.model.family):
        match.warnings.append(f"Ignored family {family!r}: {match.model.id} belongs to {match.model.family}.")
    return match


def _borrowed(text: str, entry: Model, local_path: str | None = None) -> ModelMatch:
    return ModelMatch(
        model=entry, matched_by="family", query=text, hf_id=text, local_path=local_path,
        warnings=[f"{text!r} is not a known model; using the defaults, shapes and parameter counts of "
                  f"{entry.id} (family {entry.family}). Check them against the model's own config."])
