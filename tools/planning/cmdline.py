"""Parse a `sglang generate` command line into env, subcommand and flags, against one release's table."""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field

from ...knowledge import loader, releases
from ..problems import Problem

_ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_BOOL_WORDS = {"true", "false", "1", "0", "yes", "no", "on", "off"}
_TRUE_WORDS = {"true", "1", "yes", "on"}


@dataclass
class ParsedFlag:
    flag: str  # canonical spelling in this release
    written: str  # as the user wrote it
    values: list[str] = field(default_factory=list)

    @property
    def value(self) -> str | None:
        return self.values[0] if self.values else None

    def as_bool(self) -> bool:
        return not self.values or self.values[0].lower() in _TRUE_WORDS


@dataclass
class ParsedCommand:
    env: dict[str, str]
    subcommand: str
    flags: dict[str, ParsedFlag]
    problems: list[Problem]

    def argv(self) -> list[str]:
        out = ["sglang", self.subcommand]
        for parsed in self.flags.values():
            out += [parsed.flag, *parsed.values]
        return out

    def get(self, flag: str) -> ParsedFlag | None:
        return self.flags.get(flag)


def command_line(argv: list[str], env: dict[str, str]) -> str:
    """One copy-pasteable shell line: the env assignments, then the shell-quoted argv."""
    return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.join(argv)])


def split_command(command: str) -> list[str]:
    """Shell-split one command line, joining backslash line continuations."""
    joined = re.sub(r"\\\r?\n", " ", command)
    try:
        return shlex.split(joined, comments=True)
    except ValueError as exc:
        raise ValueError(f"the command is not valid shell syntax ({exc})") from exc


def peel_env(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading `VAR=value` assignments (after an optional `env`) and the argv that follows them."""
    env: dict[str, str] = {}
    i = 1 if tokens[:1] == ["env"] else 0
    while i < len(tokens) and _ENV_ASSIGN.match(tokens[i]):
        name, _, value = tokens[i].partition("=")
        env[name] = value
        i += 1
    return env, tokens[i:]


def env_and_argv(command: str | list[str]) -> tuple[dict[str, str], list[str]]:
    """(env assignments, argv) of a shell line or an argv list; ValueError for text that does not split."""
    tokens = split_command(command) if isinstance(command, str) else [str(t) for t in command]
    return peel_env(tokens)


def _looks_like_flag(token: str) -> bool:
    return token.startswith("--") or (token.startswith("-") and len(token) > 1 and not token[1].isdigit())


# Degrees and sizes must be positive integers (argparse only checks that they are integers).
POSITIVE_INT_FLAGS = frozenset({"--num-gpus", "--tp-size", "--sp-degree", "--ulysses-degree", "--ring-degree",
                                "--width", "--height", "--num-frames", "--num-inference-steps"})
# sglang takes per-component overrides it does not declare: --<component>-path (e.g. --transformer-path).
COMPONENT_PATH = re.compile(r"^--[a-z0-9]+(?:[-_][a-z0-9]+)*-path$")
RESIDENCY_MODES = frozenset({"resident", "component-offload", "layerwise-offload", "snapshot-offload"})


def _value_problem(version: str, flag: str, values: list[str]) -> Problem | None:
    """A value argparse would accept but sglang refuses or misreads."""
    if flag in POSITIVE_INT_FLAGS and values:
        try:
            ok = int(values[0]) > 0
        except ValueError:
            ok = False
        if not ok:
            return Problem(code="bad_value", flag=flag, message=f"{flag} must be a positive integer, not {values[0]!r}.",
                           fix=f"Write {flag} <n> with n >= 1.")
    if flag == "--attention-backend" and values:
        allowed = attention_backends(version)
        if allowed and values[0] not in allowed:
            return Problem(code="bad_choice", flag=flag, message=f"sglang {version} has no attention backend "
                           f"{values[0]!r}.", fix=f"Use one of: {', '.join(allowed)}.")
    if flag == "--component-residency":
        for item in ",".join(values).split(","):
            name, _, mode = item.partition("=")
            if item and (not name or mode not in RESIDENCY_MODES):
                return Problem(code="bad_value", flag=flag, message=f"{item!r} is not COMPONENT=MODE with a known "
                               "mode.", fix=f"Use e.g. dit=resident; modes: {', '.join(sorted(RESIDENCY_MODES))}.")
    return None


def attention_backends(version: str) -> list[str]:
    """The backend names the release accepts, from the knowledge base (argparse itself does not list them)."""
    option = loader.get("options", "attention_backend")
    spelling = option.spelling_for(version) if option else None
    return list(getattr(spelling, "choices", []) or [])


def _unknown_flag_problem(version: str, written: str) -> Problem:
    name = written.split("=", 1)[0]
    dashed = "--" + name.lstrip("-").replace("_", "-")
    if name == "--warmup" and releases.has_flag(version, "--warmup-mode"):
        return Problem(code="flag_not_in_release", flag=name, message=f"--warmup was removed in sglang 0.5.18 (and "
                       f"is ambiguous in {version}).", fix="Write --warmup-mode request.")
    if "_" in name and releases.has_flag(version, dashed):
        return Problem(code="underscore_flag", flag=name,
                       message=f"`sglang generate` does not accept underscores in {name}; argparse rejects it.",
                       fix=f"Write {dashed}.")
    prefixed = [f for f in releases.flag_names(version) if f.startswith(name)]
    if len(prefixed) > 1:
        return Problem(code="ambiguous_flag", flag=name,
                       message=f"{name} is an ambiguous abbreviation ({', '.join(prefixed[:4])}); argparse refuses it.",
                       fix=f"Write the full flag name, e.g. {prefixed[0]}.")
    if prefixed:
        return Problem(code="abbreviated_flag", flag=name,
                       message=f"{name} abbreviates {prefixed[0]}: argparse takes it, but sglang only counts flags "
                               "written in full as given, so the value may be ignored.",
                       fix=f"Write {prefixed[0]}.")
    spans = [s for s in releases.flag_history(name) if s.info is not None]
    if spans:
        where = ", ".join(f"{s.since}..{s.until}" for s in spans)
        return Problem(code="flag_not_in_release", flag=name,
                       message=f"sglang {version} has no {name} flag; it exists in {where}.",
                       fix="Use the spelling of the target release (see query_knowledge kind=releases), "
                           "or set sglang_version to the release you run.")
    close = difflib.get_close_matches(name, releases.flag_names(version), n=3, cutoff=0.6)
    return Problem(code="unknown_flag", flag=name,
                   message=f"{name} is not a `sglang generate` flag in sglang {version}.",
                   fix=f"Did you mean {', '.join(close)}?" if close else "Remove it, or check `sglang generate --help`.")


def parse_tokens(tokens: list[str], version: str) -> ParsedCommand:
    """Parse argv tokens (with or without leading env assignments and `sglang generate`)."""
    env, rest = peel_env(list(tokens))
    problems: list[Problem] = []
    subcommand = "generate"
    if rest and rest[0].endswith("sglang"):
        rest = rest[1:]
    if rest and not rest[0].startswith("-"):
        subcommand, rest = rest[0], rest[1:]
    flags: dict[str, ParsedFlag] = {}
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if not _looks_like_flag(token):
            problems.append(Problem(code="stray_argument", flag=token,
                                    message=f"{token!r} is not attached to any flag.",
                                    fix="Quote values that contain spaces, and put each value right after its flag."))
            continue
        name, eq, inline = token.partition("=")
        info = releases.flag_info(version, name)
        if info is None and COMPONENT_PATH.match(name):
            values = [inline] if eq else ([rest[i]] if i < len(rest) and not _looks_like_flag(rest[i]) else [])
            i += 0 if eq else len(values)
            flags[name] = ParsedFlag(flag=name, written=name, values=values)
            continue
        if info is None:
            problems.append(_unknown_flag_problem(version, token))
            while i < len(rest) and not _looks_like_flag(rest[i]):  # skip its values
                i += 1
            continue
        values: list[str] = [inline] if eq else []
        if info.style == "switch":
            if not values and i < len(rest) and rest[i].lower() in _BOOL_WORDS:
                values = [rest[i]]  # argparse would reject it as a stray argument
                i += 1
            if values:
                problems.append(Problem(code="switch_with_value", flag=info.flag,
                                        message=f"In sglang {version}, {info.flag} is a bare switch and takes no value.",
                                        fix=f"Write {info.flag} alone to turn it on, or leave it out to keep it off."))
                values = []
        elif info.style == "bool_value":
            if not values and i < len(rest) and rest[i].lower() in _BOOL_WORDS:
                values = [rest[i]]
                i += 1
            if values and values[0].lower() not in {"true", "false"}:
                problems.append(Problem(code="bad_bool", flag=info.flag,
                                        message=f"{info.flag} takes true or false, not {values[0]!r}.",
                                        fix=f"Write {info.flag} true or {info.flag} false."))
        else:
            while i < len(rest) and not (_looks_like_flag(rest[i]) and not _is_number(rest[i])) and (
                    not values or info.nargs):
                values.append(rest[i])
                i += 1
            if not values:
                problems.append(Problem(code="missing_value", flag=info.flag,
                                        message=f"{info.flag} needs a value.", fix=f"Write {info.flag} <value>."))
            bad = [v for v in values if info.choices and v not in info.choices]
            if bad:
                problems.append(Problem(code="bad_choice", flag=info.flag,
                                        message=f"{info.flag} does not accept {bad[0]!r} in sglang {version}.",
                                        fix=f"Use one of: {', '.join(info.choices)}."))
        if (bad := _value_problem(version, info.flag, values)) is not None:
            problems.append(bad)
        if info.flag in flags and info.nargs is None:
            problems.append(Problem(code="repeated_flag", flag=info.flag,
                                    message=f"{info.flag} is given more than once; the last one wins.",
                                    fix="Keep one."))
        flags[info.flag] = ParsedFlag(flag=info.flag, written=name, values=values)
    return ParsedCommand(env=env, subcommand=subcommand, flags=flags, problems=problems)


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False
