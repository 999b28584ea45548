"""Secret values (tokens, keys, passwords) redacted by value from anything we return or save."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

REDACTED = "***"
# HF_TOKEN, HUGGING_FACE_HUB_TOKEN, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY ... (by name, case-insensitive).
# No `re` at import time: the supervisor of every run imports this module.
_SECRET_WORDS = {"TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD"}
# Shorter values would redact ordinary text ("1", "true"); real secrets are long.
MIN_SECRET_LEN = 6


def is_secret_name(name: str) -> bool:
    return not _SECRET_WORDS.isdisjoint(name.upper().split("_"))


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The values to hide, longest first so a secret containing another is replaced whole."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if is_secret_name(k) and v and len(v) >= MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


_cache: dict[tuple[str, ...], "Redactor"] = {}


class Redactor:
    """Replaces every known secret value in text; cheap when there are none."""

    def __init__(self, values: Iterable[str] = ()):
        self.values = [v for v in values if v and len(v) >= MIN_SECRET_LEN]
        self._pattern = None
        if self.values:
            import re

            self._pattern = re.compile("|".join(re.escape(v) for v in self.values))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> "Redactor":
        values = (*secret_values(env), *extra)
        cached = _cache.get(values)
        if cached is None:  # pollers call this many times a second: compile once per set of secrets
            if len(_cache) > 16:
                _cache.clear()
            cached = _cache[values] = cls(values)
        return cached

    def text(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def data(self, value: object) -> object:
        """Redact every string inside JSON-like data."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value

    def file(self, path: str) -> bool:
        """Rewrite a text file in place (atomically) if it holds a secret; returns whether it did."""
        if self._pattern is None:
            return False
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError:
            return False
        text = raw.decode("utf-8", errors="surrogateescape")
        clean = self.text(text)
        if clean == text:
            return False
        tmp = f"{path}.redact.tmp"
        with open(tmp, "wb") as f:
            f.write(clean.encode("utf-8", errors="surrogateescape"))
        os.replace(tmp, path)
        return True


# Env values kept in records for these; only the names for everything else.
_KEEP_PREFIXES = ("SGLANG_", "FLASHINFER_", "CUDA_", "NCCL_")
_KEEP_NAMES = {"PYTORCH_CUDA_ALLOC_CONF"}


def env_for_record(env: Mapping[str, str], names: Iterable[str]) -> dict[str, str | None]:
    """The env facts a record keeps: allowlisted values, other names with value None; never a secret."""
    out: dict[str, str | None] = {}
    for name in sorted(set(names)):
        if name not in env:
            continue
        keep = (name.startswith(_KEEP_PREFIXES) or name in _KEEP_NAMES) and not is_secret_name(name)
        out[name] = env[name] if keep else None
    return out
