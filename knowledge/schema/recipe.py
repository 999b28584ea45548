"""Recipes (whole commands for a goal) and tips (advice) from the seed and the research."""

from __future__ import annotations

from pydantic import Field

from .common import Entry


class Recipe(Entry):
    goal: str
    model_kind: str = Field(description="'image', 'video', or a model id pattern.")
    gpus: int | None = None
    lossy: bool
    argv: list[str] = Field(description="The command as sglang argv, placeholders in angle brackets.")
    env: dict[str, str] = Field(default_factory=dict)
    options: list[str] = Field(default_factory=list, description="Ids of options the recipe uses.")
    notes: list[str] = Field(default_factory=list)


class Tip(Entry):
    topic: str
    advice: str
    options: list[str] = Field(default_factory=list)
