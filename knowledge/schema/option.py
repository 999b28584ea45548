"""Options: each sglang flag, environment variable or sampling parameter that affects speed or memory."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Entry, Releases, Strict

Category = Literal[
    "parallelism", "offload", "compile", "warmup", "attention", "cache", "quantization",
    "precision", "sampling", "backend", "profiling", "memory", "environment", "misc",
]


class Spelling(Strict):
    """How the option is written in a range of releases."""

    releases: Releases
    flag: str = Field(description="Flag or env var name as written on the command line.")
    style: Literal["switch", "bool_value", "value", "env", "removed"] = Field(
        description="switch: bare flag; bool_value: takes true/false; value: takes a value; env: environment variable.",
    )
    note: str = ""


class Requirements(Strict):
    min_gpus: int = 1
    compute_capability: list[str] = Field(
        default_factory=list, description="Allowed compute capabilities, e.g. ['>=8.0', '!12.*'] (all must hold).",
    )
    packages: list[str] = Field(default_factory=list)
    model_families: list[str] = Field(default_factory=list, description="Empty means any family.")
    backend: Literal["sglang", "diffusers", "any"] = "any"
    needs_files: list[str] = Field(default_factory=list, description="Inputs it needs, e.g. a config YAML.")
    other: list[str] = Field(default_factory=list)


class Option(Entry):
    kind: Literal["flag", "env", "sampling_param", "automatic"]
    names: list[str] = Field(min_length=1, description="Every flag or env var spelling this entry covers.")
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
