"""sglang releases: a capability table per release, generated from the real wheels by
scripts/build_release_table.py (never typed by hand)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Entry, Strict

FlagStyle = Literal["switch", "bool_value", "value", "choice"]


class FlagInfo(Strict):
    """One `sglang generate` flag as the release's argparse registers it."""

    flag: str = Field(description="Canonical long option, e.g. '--enable-cfg-parallel'.")
    style: FlagStyle = Field(
        description="switch: bare flag, a value is an error (store_true). bool_value: `--flag` alone means true, "
        "or `--flag true|false` (sglang's StoreBoolean). value: takes a value. choice: takes one of `choices`."
    )
    aliases: list[str] = Field(default_factory=list, description="Other spellings argparse accepts for the same flag.")
    choices: list[str] = Field(default_factory=list)
    nargs: Literal["+", "*"] | None = Field(default=None, description="Several values after the flag.")
    default: str | None = Field(
        default=None, description="argparse default as text; null means unset (sglang or the model decides)."
    )
    deprecated: bool = False
    not_implemented: bool = False


class LogLine(Strict):
    """A log message as its format string (%-holes kept, f-string holes as {expr}, ANSI codes dropped)."""

    level: Literal["debug", "info", "warning", "error", "critical"]
    template: str
    source: str = Field(description="Wheel-relative path:line where the message is logged.")


class PerfDumpFormat(Strict):
    """Keys of the JSON that `--perf-dump-path` writes."""

    keys: list[str] = Field(default_factory=list)
    stage_item_keys: list[str] = Field(default_factory=list, description="Keys of each item of `steps` (stages).")
    denoise_step_item_keys: list[str] = Field(default_factory=list, description="Keys of each `denoise_steps_ms` item.")
    memory_checkpoint_keys: list[str] = Field(default_factory=list, description="Keys of each memory checkpoint (MB).")
    source: str = ""


class Release(Entry):
    version: str
    wheel: str = Field(default="", description="File name of the PyPI wheel the row was read from.")
    flags: list[FlagInfo] = Field(description="Every `sglang generate` flag this release accepts.")
    warmup: list[str] = Field(description="The argv that turns request warmup on, e.g. ['--warmup'].")
    vram_log_format: Literal["A", "B", "C", "none"]
    vram_log_level: Literal["info", "debug", "none"]
    vram_log_only_at_debug: bool = Field(
        default=False, description="The analysis is only computed/printed when the log level is debug."
    )
    vram_log_template: str = ""
    vram_log_source: str = ""
    offload_defaults: list[str] = Field(
        default_factory=list,
        description="What sglang decides for unset offload flags (_adjust_offload branches, applied to unset flags only).",
    )
    performance_mode: bool = False
    performance_mode_default: str | None = None
    log_lines: dict[str, list[LogLine]] = Field(default_factory=dict)
    perf_dump: PerfDumpFormat = Field(default_factory=PerfDumpFormat)
    validation_errors: list[str] = Field(
        default_factory=list, description="'validator: message' of every ValueError the server-args validators raise."
    )
    function_hashes: dict[str, str] = Field(
        default_factory=dict, description="Short AST hashes of key sglang functions: equal hash, unchanged behaviour."
    )
    unresolved_flag_sources: list[str] = Field(
        default_factory=list, description="Calls the generator could not follow (model-specific extra flags)."
    )
    facts: dict[str, str] = Field(default_factory=dict)
