"""Options: each sglang flag, environment variable or sampling parameter that affects speed or memory.

An entry may describe one value of a flag (``--attention-backend`` ``fa``): then ``value`` names it, and
its requirements hold only for that value. Spellings say how the flag is written in each release range.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .common import Entry, Releases, Strict

Category = Literal[
    "parallelism", "offload", "compile", "warmup", "attention", "cache", "quantization",
    "precision", "sampling", "backend", "profiling", "memory", "environment", "workload", "misc",
]

# A compute-capability clause: '>=8.0', '<9.0', '==9.0', '!=12.*', '8.*', '12.*' (see cc_allows).
_CC_CLAUSE = re.compile(r"^(>=|<=|>|<|==|!=)?(\d+)\.(\d+|\*)$")


def _cc_tuple(cc: str) -> tuple[int, int]:
    major, _, minor = cc.partition(".")
    return int(major), int(minor or 0)


def cc_allows(clauses: list[str], compute_capability: str) -> bool:
    """True if a GPU of `compute_capability` ('8.9') satisfies every clause.

    A clause is an optional comparator and a version; a '*' minor matches any minor of that major
    ('8.*' means SM8x, '!=12.*' means not SM12x). Clauses in a list are AND-ed; an OR is written as
    one clause with '|' ('8.*|12.*').
    """
    major, minor = _cc_tuple(compute_capability)
    for clause in clauses:
        if not any(_one_clause(part.strip(), major, minor) for part in clause.split("|")):
            return False
    return True


def _one_clause(clause: str, major: int, minor: int) -> bool:
    m = _CC_CLAUSE.match(clause)
    if not m:
        raise ValueError(f"bad compute-capability clause {clause!r}")
    op, c_major, c_minor = m.group(1) or "==", int(m.group(2)), m.group(3)
    if c_minor == "*":
        same = major == c_major
        if op == "==":
            return same
        if op == "!=":
            return not same
        raise ValueError(f"wildcard minor only with == or != in {clause!r}")
    got, want = (major, minor), (c_major, int(c_minor))
    return {"==": got == want, "!=": got != want, ">=": got >= want, "<=": got <= want,
            ">": got > want, "<": got < want}[op]


class Spelling(Strict):
    """How the option is written in a range of releases."""

    releases: Releases
    flag: str = Field(description="Flag or env var name as written on the command line.")
    style: Literal["switch", "bool_value", "value", "env", "removed"] = Field(
        description=(
            "switch: bare flag, a value after it is an error; bool_value: takes true/false (a bare flag "
            "also means true); value: takes a value; env: environment variable; removed: rejected."
        ),
    )
    aliases: list[str] = Field(default_factory=list, description="Other spellings argparse accepts.")
    choices: list[str] = Field(default_factory=list, description="Allowed values, if the flag restricts them.")
    default: str | None = Field(default=None, description="sglang's default when the flag is absent.")
    example: str = Field(default="", description="A value to write, e.g. 'true', '0.1', 'request'.")
    note: str = ""


class Requirements(Strict):
    min_gpus: int = 1
    compute_capability: list[str] = Field(
        default_factory=list,
        description="Clauses that must all hold, e.g. ['>=8.0', '!=12.*'] or ['8.*|12.*']; see cc_allows.",
    )
    packages: list[str] = Field(default_factory=list, description="Python packages it needs (pip names).")
    model_families: list[str] = Field(default_factory=list, description="Empty means any family.")
    modality: Literal["image", "video", "any"] = "any"
    backend: Literal["sglang", "diffusers", "any"] = "any"
    needs_files: list[str] = Field(default_factory=list, description="Inputs it needs, e.g. a config YAML.")
    needs_options: list[str] = Field(default_factory=list, description="Ids of options that must also be on.")
    platform: Literal["cuda", "rocm", "any"] = "cuda"
    other: list[str] = Field(default_factory=list)

    @field_validator("compute_capability")
    @classmethod
    def _check_cc(cls, clauses: list[str]) -> list[str]:
        for clause in clauses:
            for part in clause.split("|"):
                _one_clause(part.strip(), 8, 0)  # raises on a malformed clause
        return clauses


class Option(Entry):
    kind: Literal["flag", "env", "sampling_param", "automatic"]
    names: list[str] = Field(min_length=1, description="Every flag or env var spelling this entry covers.")
    value: str = Field(default="", description="The flag value this entry is about, for per-value entries.")
    category: Category
    lossy: bool
    effect: str = Field(description="What it does.")
    speedup: str = ""
    vram_effect: str = ""
    requires: Requirements = Field(default_factory=Requirements)
    conflicts: list[str] = Field(default_factory=list, description="Ids of options it cannot be combined with.")
    default_on: list[str] = Field(default_factory=list, description="Conditions under which sglang turns it on itself.")
    limitations: list[str] = Field(default_factory=list)
    spellings: list[Spelling] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list, description="Ids of evidence entries.")
    seed_row: str = Field(default="", description="The seed row, recipe or section this entry comes from.")

    @model_validator(mode="after")
    def _names_match_spellings(self) -> "Option":
        spelled = {s.flag for s in self.spellings} | {a for s in self.spellings for a in s.aliases}
        missing = [n for n in self.names if self.spellings and n not in spelled]
        if missing:
            raise ValueError(f"names without a spelling: {missing}")
        return self

    def spelling_for(self, version: str) -> Spelling | None:
        """The spelling that holds in `version`, or None if the option does not exist there."""
        for spelling in self.spellings:
            if spelling.releases.contains(version) and spelling.style != "removed":
                return spelling
        return None
