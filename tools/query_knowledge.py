"""query_knowledge: list, search and fetch knowledge entries."""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from typing import Any

from pydantic import BaseModel, Field

from ..knowledge import loader
from ..knowledge.schema import KINDS, Entry
from .problems import ToolInputError, cap_list

URI_PREFIX = "sglang-diffusion://knowledge"
MAX_LIMIT = 100


class EntrySummary(BaseModel):
    kind: str
    id: str
    title: str
    summary: str = ""
    stale: bool = False
    uri: str


class KindCount(BaseModel):
    kind: str
    count: int
    uri: str


class QueryKnowledgeResult(BaseModel):
    kinds: list[KindCount] = Field(default_factory=list, description="Every kind with its entry count.")
    entries: list[EntrySummary] = Field(default_factory=list, description="Matching entries, best first.")
    entry: dict[str, Any] | None = Field(default=None, description="The full entry, when one id was fetched.")
    total: int = 0
    truncated: bool = False
    uri_scheme: str = f"{URI_PREFIX}/{{kind}} lists a kind; {URI_PREFIX}/{{kind}}/{{id}} fetches one entry."


def entry_uri(kind: str, entry_id: str | None = None) -> str:
    return f"{URI_PREFIX}/{kind}" + (f"/{entry_id}" if entry_id else "")


def summarize(kind: str, entry: Entry) -> EntrySummary:
    return EntrySummary(kind=kind, id=entry.id, title=entry.title, summary=entry.summary[:300], stale=entry.stale,
                        uri=entry_uri(kind, entry.id))


def _check_kind(kind: str | None) -> list[str]:
    if kind is None:
        return list(KINDS)
    if kind not in KINDS:
        raise ToolInputError("unknown_kind", f"There is no knowledge kind {kind!r}.",
                             f"Use one of: {', '.join(KINDS)}; or leave kind out to search all.", flag="kind")
    return [kind]


@cache
def _search_texts(kind: str) -> dict[str, tuple[str, str]]:
    """Per entry id: (id, title and names; the whole entry as text), lowercased, built once per kind."""
    return {e.id: (f"{e.id} {e.title} {' '.join(getattr(e, 'names', []) or [])}".lower(),
                   json.dumps(e.model_dump(mode="json"), ensure_ascii=False).lower()) for e in loader.load(kind)}


STOPWORDS = frozenset("a an and are can do does for how i in is it make my of on or the to what when which why "
                      "with".split())
KIND_WEIGHT = {"options": 3, "tips": 3, "recipes": 3, "rules": 2, "models": 2, "gpus": 2, "evidence": 1,
               "fast_paths": 1, "releases": 0}


def _score(kind: str, entry: Entry, terms: list[str], require_all: bool) -> int:
    head, body = _search_texts(kind)[entry.id]
    hits = [t for t in terms if t in body]
    if not hits or (require_all and len(hits) < len(terms)):
        return 0
    return 4 * len(hits) + sum(3 for t in hits if t in head) + KIND_WEIGHT.get(kind, 1) + (0 if entry.stale else 1)


def fetch(entry_id: str, kind: str | None = None) -> tuple[str, Entry]:
    kinds = _check_kind(kind)
    for k in kinds:
        found = loader.get(k, entry_id)
        if found is not None:
            return k, found
    known = [i for k in kinds for i in loader.index(k)]
    close = difflib.get_close_matches(entry_id, known, n=5, cutoff=0.5)
    raise ToolInputError(
        "unknown_entry", f"No {kind or 'knowledge'} entry has id {entry_id!r}.",
        f"Closest ids: {', '.join(close)}." if close else "Search with `query`, or list a kind to see its ids.",
        flag="id",
    )


def query_knowledge(
    kind: str | None = None,
    id: str | None = None,
    query: str | None = None,
    include_stale: bool = True,
    limit: int = 20,
) -> QueryKnowledgeResult:
    """List, search or fetch knowledge-base entries (options, models, GPUs, sglang releases, recipes,
    tips, evidence, fast paths).

    No arguments: the kinds and their counts. `kind`: that kind's entries. `query`: entries whose text
    contains every word, best first. `id`: the full entry (with `kind`, or searched across kinds).
    Stale entries (seed rows that no longer hold) are marked and can be hidden with include_stale=false.
    """
    if limit < 1 or limit > MAX_LIMIT:
        raise ToolInputError("bad_limit", f"limit must be between 1 and {MAX_LIMIT}, got {limit}.",
                             "Pass a smaller limit and narrow the query.", flag="limit")
    kinds = _check_kind(kind)
    result = QueryKnowledgeResult(kinds=[KindCount(kind=k, count=len(loader.load(k)), uri=entry_uri(k)) for k in KINDS])
    if id:
        found_kind, entry = fetch(id, kind)
        result.entry = {"kind": found_kind, **entry.model_dump(mode="json", exclude_defaults=False)}
        result.entries, result.total = [summarize(found_kind, entry)], 1
        return result
    candidates = [(k, e) for k in kinds for e in loader.load(k) if include_stale or not e.stale]
    if query and query.strip():
        words = [t for t in re.split(r"[\s,;?!]+", query.lower().strip()) if t]
        terms = [t for t in words if t not in STOPWORDS] or words
        # every word first; a question in plain words rarely matches them all, so then any word, ranked
        scored = [(s, k, e) for k, e in candidates if (s := _score(k, e, terms, True))] or \
            [(s, k, e) for k, e in candidates if (s := _score(k, e, terms, False))]
        scored.sort(key=lambda t: -t[0])
        candidates = [(k, e) for _, k, e in scored]
    elif kind is None:
        return result  # the overview: kinds and counts only
    summaries = [summarize(k, e) for k, e in candidates]
    result.entries, result.total, result.truncated = cap_list(summaries, limit)
    return result
