"""Recipes (whole commands for a goal) and tips (advice) from the seed and the research."""

from __future__ import annotations

from pydantic import Field

from .common import Entry, Releases, Strict


class RecipeVariant(Strict):
    """The recipe's command as a given release range must spell it (e.g. --warmup-mode from 0.5.14)."""

    releases: Releases
    argv: list[str]
    note: str = ""


class Recipe(Entry):
    goal: str
    model_kind: str = Field(description="'image', 'video', or a model id pattern.")
    gpus: int | None = None
    lossy: bool
    argv: list[str] = Field(description="The command as the seed writes it, sglang argv, placeholders in angle brackets.")
    env: dict[str, str] = Field(default_factory=dict)
    options: list[str] = Field(default_factory=list, description="Ids of options the recipe uses.")
    notes: list[str] = Field(default_factory=list)
    variants: list[RecipeVariant] = Field(
        default_factory=list, description="Per-release spellings of the same command; argv above is the seed's form.",
    )
    alternative_to: str = Field(default="", description="Id of the recipe this one should be benchmarked against.")

    def argv_for(self, version: str) -> list[str] | None:
        """The argv to use for `version`: a matching variant, else the seed's argv if the recipe holds there."""
        for variant in self.variants:
            if variant.releases.contains(version):
                return variant.argv
        return self.argv if self.releases.contains(version) else None


class Tip(Entry):
    topic: str
    advice: str
    options: list[str] = Field(default_factory=list)
