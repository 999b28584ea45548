"""Packaging: every source folder ships as a subpackage of sglang_diffusion_mcp, with its data."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_python_folder_is_listed_as_a_package():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    listed = set(config["packages"])
    for import_name, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            name = ".".join([import_name, *rel.parts]) if rel.parts else import_name
            assert name in listed, f"{init.parent} is not in pyproject's packages, so the wheel would lack it"


def test_knowledge_data_is_package_data():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = config["package-data"]["sglang_diffusion_mcp.knowledge"]
    assert "data/*.yaml" in globs
