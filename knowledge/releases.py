"""Questions about sglang releases, answered from the generated table (data/releases.yaml).

"Does release V have flag F, how is it spelled, what does warmup look like, which VRAM log format and
level does V print?" Every answer is looked up in the table that scripts/build_release_table.py reads
from the real wheels; nothing here knows a version boundary by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from .loader import load
from .schema.common import parse_version
from .schema.release import FlagInfo, LogLine, PerfDumpFormat, Release

class ResolvedRelease(Release):
    """A table row, plus how the asked-for version mapped onto it."""

    requested: str
    exact: bool
    note: str = ""


@dataclass(frozen=True)
class FlagSpan:
    """A run of consecutive known releases in which a flag is absent (info None) or spelled the same way."""

    since: str
    until: str
    info: FlagInfo | None


@cache
def _table() -> dict[str, Release]:
    rows = sorted((r for r in load("releases") if isinstance(r, Release)), key=lambda r: parse_version(r.version))
    return {r.version: r for r in rows}


@cache
def _flags(version: str) -> dict[str, FlagInfo]:
    out: dict[str, FlagInfo] = {}
    for info in _table()[version].flags:
        out[info.flag] = info
        for alias in info.aliases:
            out[alias] = info
    return out


def known_versions() -> list[str]:
    """Every release in the table, oldest first."""
    return list(_table())


def newest() -> str:
    return known_versions()[-1]


def oldest() -> str:
    return known_versions()[0]


@cache
def resolve(version: str | None = None) -> ResolvedRelease:
    """The table row for `version`: exact, else the nearest known release at or below it, with a note.

    None means the newest known release. A version older than the oldest known release, or text that is
    not a version, raises ValueError with a message that says which versions are known.
    """
    table = _table()
    requested = newest() if version is None else str(version).strip()
    key = parse_version(requested)
    if key < parse_version(oldest()):
        raise ValueError(
            f"sglang {requested} is older than the oldest release this knowledge base covers ({oldest()}); "
            f"known releases: {oldest()} to {newest()}. Upgrade sglang or pass sglang_version explicitly."
        )
    best = max((v for v in table if parse_version(v) <= key), key=parse_version)
    exact = best == requested.lstrip("v")
    note = ""
    if not exact:
        if key > parse_version(newest()):
            note = f"sglang {requested} is newer than the newest known release; assuming it behaves like {best}."
        else:
            note = f"sglang {requested} is not in the table; using {best}, the nearest known release at or below it."
    row = table[best]
    return ResolvedRelease.model_construct(**dict(row), requested=requested, exact=exact, note=note)


def _canonical(flag: str) -> str:
    flag = flag.strip().split("=", 1)[0]
    return flag if flag.startswith("-") else f"--{flag.replace('_', '-')}"


def flag_info(version: str | None, flag: str) -> FlagInfo | None:
    """How release `version` registers `flag` (an alias or `--flag=value` works too), or None if it does not.

    Spelling is exact: `sglang generate` uses a plain argparse parser, so `--flag_name` is not accepted.
    A bare name without dashes ("warmup_mode") is taken as the dashed flag ("--warmup-mode").
    """
    release = resolve(version)
    return _flags(release.version).get(_canonical(flag))


def has_flag(version: str | None, flag: str) -> bool:
    return flag_info(version, flag) is not None


def flag_names(version: str | None) -> list[str]:
    """Every spelling (canonical and alias) the release accepts, sorted."""
    return sorted(_flags(resolve(version).version))


def _require(version: str | None, flag: str) -> FlagInfo:
    info = flag_info(version, flag)
    if info is None:
        release = resolve(version)
        present: list[list[str]] = []  # merge spans that differ only in spelling
        for span in flag_history(flag):
            if span.info is None:
                continue
            if present and known_versions().index(span.since) == known_versions().index(present[-1][1]) + 1:
                present[-1][1] = span.until
            else:
                present.append([span.since, span.until])
        where = ", ".join(f"{a}..{b}" for a, b in present) or "no known release"
        raise ValueError(f"sglang {release.version} has no {_canonical(flag)} flag (it exists in: {where})")
    return info


def spell_bool(version: str | None, flag: str, value: bool) -> list[str]:
    """The argv that sets a boolean flag to `value` in this release.

    A bare switch (store_true) becomes [flag] for True and [] for False (the switch cannot say false);
    a value-taking boolean becomes [flag, "true"|"false"].
    """
    info = _require(version, flag)
    if info.style == "switch":
        return [info.flag] if value else []
    if info.style == "bool_value":
        return [info.flag, "true" if value else "false"]
    raise ValueError(f"{info.flag} is not a boolean flag in sglang {resolve(version).version} (it takes a value)")


def spell(version: str | None, flag: str, value: object = True) -> list[str]:
    """The argv for `flag` with `value` (bool, scalar or list), checked against the release's choices."""
    if isinstance(value, bool):
        return spell_bool(version, flag, value)
    info = _require(version, flag)
    values = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    if info.style in ("switch", "bool_value"):
        raise ValueError(f"{info.flag} is a boolean flag in sglang {resolve(version).version}; pass True or False")
    if len(values) > 1 and info.nargs is None:
        raise ValueError(f"{info.flag} takes a single value")
    bad = [v for v in values if info.choices and v not in info.choices]
    if bad:
        raise ValueError(f"{info.flag} does not accept {bad[0]!r}; choices: {', '.join(info.choices)}")
    return [info.flag, *values]


def flag_history(flag: str) -> list[FlagSpan]:
    """Where a flag exists and how it is spelled, as spans over the known releases (oldest first)."""
    spans: list[FlagSpan] = []
    name = _canonical(flag)
    for version in known_versions():
        info = _flags(version).get(name)
        if spans and spans[-1].info == info:
            spans[-1] = FlagSpan(spans[-1].since, version, info)
        else:
            spans.append(FlagSpan(version, version, info))
    return spans


def warmup_argv(version: str | None) -> list[str]:
    """The flags that make `sglang generate` warm up before the timed request."""
    return list(resolve(version).warmup)


def performance_mode_manual_argv(version: str | None) -> list[str]:
    """['--performance-mode', 'manual'] where the release re-plans on its own (has the flag), else []."""
    info = flag_info(version, "--performance-mode")
    return spell(version, "--performance-mode", "manual") if info and "manual" in info.choices else []


def vram_log(version: str | None) -> tuple[str, str, str]:
    """(format 'A'|'B'|'C'|'none', level 'info'|'debug'|'none', format string) of the VRAM analysis line."""
    release = resolve(version)
    return release.vram_log_format, release.vram_log_level, release.vram_log_template


def needs_debug_for_vram_log(version: str | None) -> bool:
    """True where the release computes or prints the VRAM analysis only at `--log-level debug`."""
    release = resolve(version)
    return release.vram_log_only_at_debug or release.vram_log_level == "debug"


def vram_log_argv(version: str | None) -> list[str]:
    """What to add so the VRAM analysis is printed (['--log-level', 'debug'] or [])."""
    return spell(version, "--log-level", "debug") if needs_debug_for_vram_log(version) else []


def log_lines(version: str | None, key: str) -> list[LogLine]:
    """Format strings of a known log line (e.g. 'warmed_up_timing', 'max_peak', 'warmup_failed')."""
    return list(resolve(version).log_lines.get(key, []))


def perf_dump_format(version: str | None) -> PerfDumpFormat:
    return resolve(version).perf_dump


def offload_defaults(version: str | None) -> list[str]:
    """What the release decides for offload flags the user left unset (read from its _adjust_offload)."""
    return list(resolve(version).offload_defaults)
