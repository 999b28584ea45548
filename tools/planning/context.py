"""Everything a plan is judged against: model, workload, hardware, release and budget."""

from __future__ import annotations

from dataclasses import dataclass

from ...knowledge.schema import Model
from ..hardware_spec import ResolvedHardware
from .workload import Workload


@dataclass(frozen=True)
class PlanContext:
    model: Model
    workload: Workload
    hardware: ResolvedHardware
    version: str
    budget_gb: float
    allow_lossy: bool = False
    model_path: str = ""  # what --model-path gets: the user's id or folder; the canonical id for a short name

    @property
    def model_ref(self) -> str:
        return self.model_path or self.model.hf_ids[0]

    @property
    def sm(self) -> int | None:
        cc = self.hardware.compute_capability
        if not cc:
            return None
        major, minor = cc.split(".")
        return int(major) * 10 + int(minor)
