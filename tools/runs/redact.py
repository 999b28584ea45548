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


class StreamRedactor:
    """Redacts a byte stream chunk by chunk (sglang's output on its way to the log).

    A secret may be split across two reads, so the longest tail of what came in that could still grow into
    a secret is held back until the next chunk (or `finish`); everything else is returned at once, so
    progress (tqdm's `\\r` redraws) still reaches the log promptly. Without secrets it returns its input.
    """

    def __init__(self, values: Iterable[str] = ()):
        secrets = sorted({v.encode("utf-8", "surrogateescape") for v in values if v and len(v) >= MIN_SECRET_LEN},
                         key=len, reverse=True)
        self.secrets = secrets
        self._pattern = None
        self._pending = b""
        if secrets:
            import re

            self._pattern = re.compile(b"|".join(re.escape(v) for v in secrets))
        self._redacted = REDACTED.encode()

    def feed(self, data: bytes) -> bytes:
        """What of `data` (after what was held back) can be written now, redacted exactly as the whole
        stream would be: a match is applied only where no later byte could still turn it into a longer one."""
        if self._pattern is None:
            return data
        text, out, pos = self._pending + data, [], 0
        while True:
            undecided = self._undecided(text, pos)
            m = self._pattern.search(text, pos) if pos < undecided else None
            if m is None or m.start() >= undecided:  # a match may end past `undecided`, never start there
                out.append(text[pos:undecided])
                self._pending = text[undecided:]
                return b"".join(out)
            out += (text[pos:m.start()], self._redacted)
            pos = m.end()

    def finish(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self._pattern.sub(self._redacted, rest) if self._pattern is not None and rest else rest

    def _undecided(self, text: bytes, start: int) -> int:
        """The leftmost position >= start from which the rest of text is a proper prefix of a secret (only
        more data can tell whether a secret starts there), else len(text). A few finds per chunk."""
        n, first_pos = len(text), len(text)
        for secret in self.secrets:
            head = secret[:1]
            pos = text.find(head, max(start, n - len(secret) + 1), first_pos)
            while pos != -1:
                if secret.startswith(text[pos:]):
                    first_pos = pos
                    break
                pos = text.find(head, pos + 1, first_pos)
        return first_pos


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
