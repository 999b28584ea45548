"""The problem object every tool shares, and the error a caller can act on."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

MAX_PROBLEM_TEXT = 2000  # an error echoes the bad input; never megabytes of it


class Problem(BaseModel):
    """Something wrong or worth knowing: what it is and what to do about it."""

    code: str = Field(description="Stable machine-readable code, e.g. 'unknown_model'.")
    message: str = Field(description="What is wrong, in one or two sentences.")
    fix: str = Field(default="", description="What to do instead.")
    flag: str | None = Field(default=None, description="The flag or input this concerns, if any.")

    @field_validator("message", "fix", "flag")
    @classmethod
    def _cap(cls, value: str | None) -> str | None:
        if value is not None and len(value) > MAX_PROBLEM_TEXT:
            return value[:MAX_PROBLEM_TEXT] + f"... [{len(value) - MAX_PROBLEM_TEXT} more characters]"
        return value


class ToolInputError(Exception):
    """Raised by tool logic for input the caller can correct; the MCP layer turns it into a tool error."""

    def __init__(self, code: str, message: str, fix: str = "", flag: str | None = None):
        self.problem = Problem(code=code, message=message, fix=fix, flag=flag)
        super().__init__(self.text)

    @property
    def text(self) -> str:
        p = self.problem
        return f"[{p.code}] {p.message}" + (f" Fix: {p.fix}" if p.fix else "")


def cap_list(items: list, limit: int) -> tuple[list, int, bool]:
    """Cap a result list so results stay small; returns (items, total, truncated)."""
    return items[:limit], len(items), len(items) > limit
