"""Fields every knowledge entry shares: identity, sources and the sglang releases where it holds."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SourceKind = Literal["seed", "code", "help", "docs", "blog", "pr", "issue", "measured", "spec"]

_RELEASE = re.compile(r"^\d+\.\d+\.\d+(\.post\d+)?$")
_ANY_VERSION = re.compile(
    r"^v?(?P<base>\d+\.\d+\.\d+)(?:\.post(?P<post>\d+))?(?P<pre>(?:rc|a|b|\.?dev)\d*)?(?:\+[\w.]+)?$"
)


def parse_version(version: str) -> tuple[int, ...]:
    """Sort key for any sglang version string (v0.5.12, 0.5.12+cu128, 0.5.14rc1 ...): post releases sort after
    their base, pre-releases just below it. ValueError for text that is not a version."""
    m = _ANY_VERSION.match(str(version).strip())
    if not m:
        raise ValueError(f"not an sglang version: {version!r} (expected something like 0.5.10 or 0.5.10.post1)")
    base = tuple(int(p) for p in m.group("base").split("."))
    if m.group("pre"):
        return (*base, -2)
    return (*base, int(m.group("post")) if m.group("post") else -1)


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of a released version as the data writes it (0.5.10 or 0.5.10.post1, nothing else)."""
    if not _RELEASE.match(version):
        raise ValueError(f"not an sglang version: {version!r} (expected like 0.5.10 or 0.5.10.post1)")
    return parse_version(version)


class Strict(BaseModel):
    # defer_build: validators are built on first use (loading data), not at import, so startup stays fast
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Source(Strict):
    """Where a fact comes from. `kind` says whether it was measured or read from code, docs, etc."""

    kind: SourceKind
    ref: str = Field(description="URL, or wheel-relative path like 'sglang==0.5.10.post1:python/sglang/...'.")
    note: str = ""


class Releases(Strict):
    """Inclusive range of sglang releases where an entry holds; an open end means 'still true'."""

    since: str | None = None
    until: str | None = None

    @field_validator("since", "until")
    @classmethod
    def _check(cls, v: str | None) -> str | None:
        if v is not None:
            version_key(v)
        return v

    def contains(self, version: str) -> bool:
        key = version_key(version)
        if self.since and key < version_key(self.since):
            return False
        return not (self.until and key > version_key(self.until))


class Entry(Strict):
    """Base of every knowledge entry."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
    title: str
    summary: str = ""
    sources: list[Source] = Field(min_length=1)
    releases: Releases = Field(default_factory=Releases)
    stale: bool = False
    stale_reason: str = ""
    superseded_by: list[str] = Field(default_factory=list, description="Ids of the entries that replace a stale one.")
