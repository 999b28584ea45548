"""Schema of every knowledge kind; KINDS maps a kind to its data file and model."""

from .common import Entry, Releases, Source, version_key
from .evidence import Evidence
from .fast_path import FastPath
from .gpu import Gpu
from .kernel_skill import KernelSkill
from .model import Model
from .option import Option
from .recipe import Recipe, Tip
from .release import Release
from .rule import Rule

KINDS: dict[str, type[Entry]] = {
    "options": Option,
    "models": Model,
    "gpus": Gpu,
    "releases": Release,
    "recipes": Recipe,
    "tips": Tip,
    "evidence": Evidence,
    "fast_paths": FastPath,
    "rules": Rule,
    "kernel_skills": KernelSkill,
}

__all__ = ["KINDS", "Entry", "Releases", "Source", "version_key", "Evidence", "FastPath", "Gpu", "Model",
           "Option", "Recipe", "Tip", "Release", "Rule", "KernelSkill"]
