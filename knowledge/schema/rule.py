"""Rules: declarative checks the rules engine applies to a planned or given command.

A rule applies when its `when` expression is true for the facts of a plan, and is violated when its
`require` expression is then false. Expressions use a small, safe subset of Python: literals, names
from FACTS, `and`/`or`/`not`, comparisons (including `in`), + - * / // %, and the function `ver()`.
They are parsed and checked when the data loads, so a typo fails the knowledge tests, not a user.
"""

from __future__ import annotations

import ast
from functools import cache
from typing import Any, Literal

from pydantic import Field, field_validator

from .common import Entry, version_key

# The facts a rule may read; the rules engine supplies these (names are the contract).
FACTS: dict[str, str] = {
    "num_gpus": "int: GPUs the command uses (--num-gpus).",
    "tp_size": "int: tensor-parallel degree.",
    "sp_degree": "int: sequence-parallel degree (ulysses_degree * ring_degree).",
    "ulysses_degree": "int: Ulysses degree.",
    "ring_degree": "int: ring-attention degree.",
    "cfg_degree": "int: CFG-parallel degree; 1 when CFG parallel is off, usually 2 when on.",
    "heads": "int: attention heads of the model's DiT.",
    "attention_backend": "str: --attention-backend value, '' when sglang picks.",
    "uses_cfg": "bool: the request runs a negative (unconditional) branch each step.",
    "model_cfg_parallel_ok": "bool: the model accepts CFG parallel (models.yaml cfg_parallel_ok).",
    "model_family": "str: models.yaml family, e.g. 'wan2.2', 'flux.1', 'qwen-image'.",
    "modality": "str: 'image' or 'video'.",
    "sm": "int: compute capability as major*10+minor of the weakest GPU used (80, 89, 90, 100, 120).",
    "dtype": "str: DiT compute dtype: 'bf16', 'fp16' or 'fp32'.",
    "weight_format": "str: DiT weights: 'bf16', 'fp16', 'fp8', 'int8', 'nvfp4', 'svdq-int4', 'svdq-nvfp4', 'gguf'.",
    "prequantized_weights": "bool: --transformer-weights-path points at pre-quantized weights.",
    "enabled": "set[str]: ids of options.yaml entries switched on in the command or the plan.",
    "prefetch": "float: --dit-offload-prefetch-size (sglang's default 0.0 when unset).",
    "mask_strategy_file": "bool: a sliding-tile mask-strategy file is given.",
    "resident_plan_fits": "bool: a plan with every component resident fits the VRAM budget.",
    "mig": "bool: the GPUs are MIG slices.",
    "distinct_gpus": "int: physical GPUs behind the devices used (less than num_gpus when MIG slices share one).",
    "backend": "str: 'sglang', 'diffusers' or 'auto'.",
    "version": "tuple: the target sglang release as ver('0.5.19') gives it.",
    "warmed_timing": "bool: the timing excludes warmup (warmup is on).",
    "explicit_residency": "bool: every component's residency is written on the command line.",
    "explicit_parallel": "bool: every parallel degree is written on the command line.",
    "performance_mode": "str: --performance-mode value, '' when absent.",
}

_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.BinOp, ast.Add,
    ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Name, ast.Load, ast.Constant, ast.Tuple,
    ast.List, ast.Set, ast.Call, ast.IfExp,
)
_FUNCTIONS = {"ver": version_key}


@cache
def _compiled(expr: str) -> tuple[Any, frozenset[str]]:
    tree = check_expression(expr)
    needed = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in FACTS)
    return compile(tree, "<rule>", "eval"), needed


def check_expression(expr: str) -> ast.Expression:
    """Parse `expr` and refuse anything outside the rule language (unknown names, attributes, calls)."""
    tree = ast.parse(expr, mode="eval")
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(f"{type(node).__name__} is not allowed in a rule expression: {expr!r}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
            raise ValueError(f"only {sorted(_FUNCTIONS)} may be called in a rule expression: {expr!r}")
        if isinstance(node, ast.Name) and node.id not in FACTS and node.id not in _FUNCTIONS \
                and node.id not in ("True", "False"):
            raise ValueError(f"unknown fact {node.id!r} in {expr!r}; known: {sorted(FACTS)}")
    return tree


def evaluate(expr: str, facts: dict[str, Any]) -> Any:
    """Evaluate a checked rule expression over `facts` (missing facts raise KeyError naming them)."""
    code, needed = _compiled(expr)  # checked and compiled once per expression
    missing = sorted(needed - facts.keys())
    if missing:
        raise KeyError(f"rule needs facts {missing}")
    scope = {**_FUNCTIONS, **{k: facts[k] for k in needed}}
    return eval(code, {"__builtins__": {}}, scope)  # noqa: S307 - checked AST


class Rule(Entry):
    severity: Literal["error", "warning", "info"]
    category: Literal["parallelism", "exclusion", "capability", "offload", "warmup", "version", "quality", "other"]
    options: list[str] = Field(default_factory=list, description="Ids of the options the rule concerns.")
    when: str = Field(default="True", description="Rule expression: the rule applies when this is true.")
    require: str = Field(description="Rule expression: a command that the rule applies to must make this true.")
    message: str = Field(description="What is wrong, said to the user; may use {fact} placeholders.")
    fix: str = Field(description="What to do about it.")
    suggest: dict[str, str | float | int | bool] = Field(
        default_factory=dict, description="Option id -> value the planner should use to satisfy the rule.",
    )
    sglang_behaviour: str = Field(default="", description="What sglang itself does (raises, warns, silently drops).")
    evidence: list[str] = Field(default_factory=list)

    @field_validator("when", "require")
    @classmethod
    def _parse(cls, expr: str) -> str:
        check_expression(expr)
        return expr

    def applies(self, facts: dict[str, Any]) -> bool:
        return bool(evaluate(self.when, facts))

    def violated(self, facts: dict[str, Any]) -> bool:
        """True when the rule applies to `facts` and its requirement fails."""
        return self.applies(facts) and not bool(evaluate(self.require, facts))
