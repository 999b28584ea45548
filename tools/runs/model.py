"""Result models of run_generate, get_run, cancel_run and list_runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..problems import Problem

RunStatus = Literal["queued", "running", "succeeded", "failed", "timeout", "cancelled", "interrupted"]
ErrorCode = Literal["oom", "gated_model", "model_not_found", "bad_flag", "cuda", "nccl", "diffusers_fallback",
                    "no_perf_dump", "disk_full", "timeout", "cancelled", "unknown"]


class Addition(BaseModel):
    """Something the tool added to the command, and why."""

    kind: Literal["flag", "env"]
    name: str
    value: str | None = None
    reason: str


class StageTime(BaseModel):
    name: str
    ms: float


class StepStats(BaseModel):
    count: int = 0
    mean_ms: float | None = None
    median_ms: float | None = None


class Perf(BaseModel):
    """Parsed from sglang's perf dump (the first repeat's when repeats > 1; medians are in `repeats`)."""

    total_ms: float | None = None
    denoise_ms: float | None = Field(default=None, description="Denoising stages (SGLang's primary metric), "
                                     "else the sum of the denoise steps.")
    stages: list[StageTime] = Field(default_factory=list)
    steps: StepStats = Field(default_factory=StepStats)
    memory_checkpoints: dict[str, dict[str, float]] = Field(default_factory=dict,
                                                            description="sglang's memory snapshots, GiB.")


class RepeatStats(BaseModel):
    count: int
    values_s: list[float] = Field(description="Per repeat: warmup-excluded seconds (else total).")
    median_s: float | None = None
    spread_pct: float | None = Field(default=None, description="(max - min) / median, in percent.")
    median_total_ms: float | None = None
    median_denoise_ms: float | None = None


class RunResult(BaseModel):
    run_id: str
    status: RunStatus
    waiting_for: str | None = Field(default=None, description="What a queued run waits for.")
    phase: str | None = Field(default=None, description="loading, warmup, stage:<Stage>, denoising, saving, ...")
    progress: float = Field(default=0.0, description="0..1, from the log.")
    progress_message: str | None = Field(default=None, description="What the log says now, e.g. 'denoising step 5/20'.")
    exit_code: int | None = None
    command: str = Field(default="", description="One shell line: env assignments then the argv, secrets redacted.")
    argv: list[str] = Field(default_factory=list, description="The argv run, starting with sglang generate; redacted.")
    env: dict[str, str | None] = Field(default_factory=dict, description="Allowlisted env values; names only for others.")
    gpus: list[int | str] = Field(default_factory=list)
    hardware: str | None = None
    sglang_version: str | None = None
    warmup_excluded_s: float | None = Field(default=None, description="From the '(with warmup excluded)' line.")
    perf: Perf | None = None
    peak_vram_gb: float | None = Field(default=None, description="Peak reserved GPU memory, GiB.")
    vram: dict[str, Any] | None = Field(default=None, description="sglang's VRAM analysis, GiB.")
    server_args: dict[str, Any] | str | None = Field(default=None, description="The configuration sglang printed.")
    outputs: list[str] = Field(default_factory=list)
    perf_dump_path: str | None = None
    trace_paths: list[str] = Field(default_factory=list, description="Torch profiler traces (profile=true runs).")
    log_path: str | None = None
    run_dir: str | None = None
    log_tail: list[str] = Field(default_factory=list, description="At most 40 last lines (each at most 400 "
                                "characters, 6000 in all; log_path has everything), secrets redacted.")
    error: Problem | None = None
    additions: list[Addition] = Field(default_factory=list)
    repeats: RepeatStats | None = None
    warnings: list[Problem] = Field(default_factory=list)
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None


class CancelResult(BaseModel):
    run_id: str
    status: RunStatus
    was: RunStatus = Field(description="The status before cancel_run.")
    message: str


class RunSummary(BaseModel):
    run_id: str
    status: str
    model: str | None = None
    hardware: str | None = None
    gpu_type: str | None = None
    gpu_count: int | None = None
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    steps: int | None = None
    sglang_version: str | None = None
    error_code: str | None = None
    warmup_excluded_s: float | None = None
    denoise_ms: float | None = None
    peak_vram_gb: float | None = None
    created_at: str | None = None
    run_dir: str | None = None


class ListRunsResult(BaseModel):
    runs: list[RunSummary] = Field(default_factory=list)
    total: int = 0
    truncated: bool = False
