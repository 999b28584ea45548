"""SGLang's own agent skills for diffusion kernel work: where each lives per release and what it expects."""

from __future__ import annotations

from pydantic import Field

from .common import Entry, Releases, Strict


class SkillLocation(Strict):
    releases: Releases
    path: str = Field(description="Folder inside the sglang package, e.g. multimodal_gen/.claude/skills/<name>.")


class KernelSkill(Entry):
    skill: str = Field(description="The skill's name as its SKILL.md frontmatter spells it.")
    role: str = Field(description="'diagnose' (benchmark/profile, hands work off) or 'kernel' (a hand-off target).")
    use_for: list[str] = Field(default_factory=list,
                               description="Trace kinds or families it fits: attention, gemm, norm_elementwise, "
                                           "sglang_kernel (tuning an existing sglang kernel), ...")
    locations: list[SkillLocation] = Field(min_length=1, description="Where the wheel ships it, per release range.")
    inputs: list[str] = Field(default_factory=list, description="What the skill expects to be handed.")
