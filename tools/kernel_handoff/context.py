"""What the plan knows about the run: its command's flags, release, GPU, model family."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from ...knowledge import loader
from ...knowledge.schema.option import Option
from ..perf_dump import PROFILER_ENVS, PROFILER_FLAGS, user_flags
from ..planning.cmdline import env_and_argv

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


def parse_command(command: str | None) -> tuple[dict[str, str], dict[str, str | None]]:
    """(env prefix, flags) of an `sglang generate` line; a bare flag maps to None. Bad shell text gives empties."""
    env, tokens = command_tokens(command)
    flags: dict[str, str | None] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--"):
            if "=" in tok:
                name, _, value = tok.partition("=")
                flags[name] = value
            elif i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                flags[tok] = tokens[i + 1]
                i += 1
            else:
                flags[tok] = None
        i += 1
    return env, flags


def reproduction(tokens: list[str], env: dict[str, str] | None = None, added_flags: set[str] | None = None,
                 added_env: set[str] | frozenset[str] = frozenset()) -> str | None:
    """The unprofiled command to time a baseline with: `tokens` (from `sglang`) less the profiler flags and what
    run_generate added (perf-dump and output paths into the profiled run's folder, warmup, log level; from the
    record's additions when known), and `env` less the profiler directories and run_generate's env additions.
    Rerunning it through run_generate adds fresh paths, so the profiled run's evidence is never overwritten."""
    if not tokens:
        return None
    head = [str(t) for t in tokens[:2]] if len(tokens) >= 2 and tokens[1] == "generate" else [str(tokens[0])]
    rest = user_flags([str(t) for t in tokens[len(head):]], added_flags, drop=PROFILER_FLAGS)
    kept_env = {k: v for k, v in (env or {}).items() if k not in PROFILER_ENVS and k not in added_env}
    return " ".join([f"{k}={shlex.quote(v)}" for k, v in kept_env.items()] + [shlex.join([*head, *rest])])


def command_tokens(command: str | None) -> tuple[dict[str, str], list[str]]:
    """(env prefix, argv) of a shell line; empties when it cannot be split."""
    if not command:
        return {}, []
    try:
        return env_and_argv(command)
    except ValueError:
        return {}, []


@dataclass
class HandoffContext:
    command: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str | None] = field(default_factory=dict)
    version: str | None = None
    model: str | None = None
    model_family: str | None = None
    model_uses_cfg: bool | None = None
    gpu_name: str | None = None
    gpu_count: int | None = None
    compute_capability: str | None = None
    hardware: str | None = None
    reproduce: str | None = None  # the unprofiled command, for run_generate

    def switch(self, flag: str) -> bool | None:
        """True/False when the command sets a boolean flag, None when it leaves it out."""
        if flag not in self.flags:
            return None
        value = self.flags[flag]
        if value is None or value.lower() in TRUE:
            return True
        return False if value.lower() in FALSE else True

    def number(self, flag: str) -> float | None:
        try:
            return float(self.flags[flag]) if self.flags.get(flag) is not None else None
        except ValueError:
            return None


def option(option_id: str) -> Option | None:
    entry = loader.get("options", option_id)
    return entry if isinstance(entry, Option) else None


def spell(option_id: str, version: str | None, value: str | None = None) -> list[str] | None:
    """How to write an option in `version` (newest spelling when unknown); None if that release lacks it."""
    opt = option(option_id)
    if opt is None or not opt.spellings:
        return None
    sp = opt.spelling_for(version) if version else opt.spellings[-1]
    if sp is None or sp.style == "removed":
        return None
    if sp.style == "switch":
        return [sp.flag]
    if sp.style == "env":
        return [f"{sp.flag}={value or sp.example}"]
    return [sp.flag, value or sp.example or "true"]
