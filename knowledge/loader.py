"""Loads data/<kind>.yaml into the schema models, lazily and once per process."""

from __future__ import annotations

from functools import cache
from importlib import resources

from pydantic import ValidationError

from .schema import KINDS, Entry


class KnowledgeError(Exception):
    """A data file is broken; the message names the file and the entry."""


def _read(kind: str) -> str:
    return resources.files(__package__).joinpath("data", f"{kind}.yaml").read_text(encoding="utf-8")


def parse_entries(kind: str, text: str, filename: str) -> list[Entry]:
    """Validate one kind's YAML text; raises KnowledgeError naming the file and the failing entry."""
    import yaml  # here, not at import: only loading data needs it, and startup stays fast

    model = KINDS[kind]
    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{filename}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise KnowledgeError(f"{filename}: expected a mapping with an 'entries' list")
    entries, seen = [], set()
    for i, raw in enumerate(doc["entries"]):
        label = raw.get("id", f"#{i}") if isinstance(raw, dict) else f"#{i}"
        try:
            entry = model.model_validate(raw)
        except ValidationError as exc:
            raise KnowledgeError(f"{filename}: entry {label!r}: {exc}") from exc
        if entry.id in seen:
            raise KnowledgeError(f"{filename}: entry {label!r}: duplicate id")
        seen.add(entry.id)
        entries.append(entry)
    return entries


@cache
def load(kind: str) -> tuple[Entry, ...]:
    if kind not in KINDS:
        raise KeyError(kind)
    return tuple(parse_entries(kind, _read(kind), f"knowledge/data/{kind}.yaml"))


@cache
def index(kind: str) -> dict[str, Entry]:
    return {e.id: e for e in load(kind)}


def get(kind: str, entry_id: str) -> Entry | None:
    return index(kind).get(entry_id)


def broken_links() -> list[str]:
    """Every reference from one entry to another id that does not exist (checked by the tests)."""
    ids = {kind: set(index(kind)) for kind in KINDS}
    all_ids = set().union(*ids.values())
    problems = []
    for kind in KINDS:
        for entry in load(kind):
            refs = list(entry.superseded_by)
            for field in ("conflicts", "evidence", "supports", "options"):
                refs += getattr(entry, field, []) or []
            problems += [f"{kind}/{entry.id} -> {ref}" for ref in refs if ref not in all_ids]
    return problems
