"""Hardware specs like `4xH100-80GB` or what detect_gpus found, resolved to one object the rules can use.

Grammar (case-insensitive): `<count>x<gpu>[-<memory>GB][-sxm|-pcie|-nvl]`. A bare name takes the family's
most common server form (H100 -> SXM with NVLink) and says so in a warning.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from typing import Callable, Literal

from pydantic import BaseModel, Field

from ..knowledge import loader
from ..knowledge.schema import Gpu
from .gpus.model import DetectGpusResult, GpuInfo
from .problems import Problem, ToolInputError

GRAMMAR = "<count>x<gpu>[-<memory>GB][-sxm|-pcie|-nvl]"
EXAMPLES = ("1xRTX4090", "2xL40S", "4xH100-80GB", "8xH200", "4xH100-pcie", "8xMI300X")
MAX_COUNT = 64
FORMS = ("sxm", "pcie", "nvl")
_FORM_OF = {"sxm": "sxm", "pcie": "pcie", "nvl": "nvl", "consumer": "pcie", "workstation": "pcie", "oam": "oam"}
_FORM_WORDS = {"sxm": "sxm", "sxm4": "sxm", "sxm5": "sxm", "pcie": "pcie", "nvl": "nvl"}
_FORM_PREFERENCE = {"sxm": 0, "oam": 1, "nvl": 2, "pcie": 3, "workstation": 4, "consumer": 5}

Interconnect = Literal["none", "nvlink", "pcie", "mixed", "xgmi", "unknown"]


class ResolvedHardware(BaseModel):
    """The hardware a recommendation is for; results echo it."""

    spec: str = Field(description="Canonical spec, e.g. '4xH100-80GB-sxm'.")
    input: str | None = Field(default=None, description="The spec as the caller wrote it; null when detected.")
    origin: Literal["spec", "detected"]
    count: int
    gpu: str | None = Field(default=None, description="Knowledge-base GPU id; null for a detected GPU the "
                                                      "knowledge base does not know.")
    gpu_name: str
    vendor: Literal["nvidia", "amd"] = "nvidia"
    supported: bool = Field(default=True, description="False: recognised but not supported yet (AMD/ROCm).")
    form_factor: str | None = None
    memory_gb: float = Field(description="Memory per GPU in GiB as the driver reports it.")
    total_memory_gb: float = Field(description="memory_gb times count, GiB.")
    compute_capability: str | None = None
    architecture: str | None = None
    interconnect: Interconnect = Field(description="none (one GPU), nvlink (every pair), pcie, mixed, xgmi, unknown.")
    all_nvlink: bool = False
    pcie_p2p: bool = True
    bandwidth_gbs: float | None = None
    bf16_tflops: float | None = None
    fp8_tflops: float | None = None
    fp4_tflops: float | None = None
    gpu_indices: list[int] = Field(default_factory=list, description="Detected GPUs counted (physical indices).")
    warnings: list[Problem] = Field(default_factory=list)

    def entry(self) -> Gpu | None:
        """The full knowledge-base entry, if any."""
        return loader.get("gpus", self.gpu) if self.gpu else None  # type: ignore[return-value]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _families() -> dict[str, list[Gpu]]:
    families: dict[str, list[Gpu]] = defaultdict(list)
    for e in loader.load("gpus"):
        families[e.family].append(e)  # type: ignore[attr-defined]
    return families


def _names() -> dict[str, str]:
    """Every spelling a spec may use for a family -> the family."""
    names = {}
    for family, entries in _families().items():
        for e in entries:
            for n in (family, e.spec_name, *e.aliases):
                names[_norm(n)] = family
    return names


def _bad_spec(spec: str, why: str) -> ToolInputError:
    guess = f" Did you mean 1x{spec.strip()}?" if _norm(spec) and _norm(spec) in _names() else ""
    return ToolInputError("bad_hardware_spec", f"Hardware spec {spec!r} {why}. The grammar is {GRAMMAR} "
                          f"(case-insensitive).{guess}", f"Write it like {', '.join(EXAMPLES)}.", flag="hardware")


def _split(spec: str) -> tuple[int, str, int | None, str | None]:
    match = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(.*?)\s*", spec, re.I)
    if not match:
        raise _bad_spec(spec, "does not start with a GPU count and 'x'")
    count, rest = int(match.group(1)), match.group(2)
    memory = form = None
    parts = [p for p in re.split(r"[-_\s]+", rest) if p]
    while len(parts) > 1:
        last = parts[-1].lower()
        if form is None and last in _FORM_WORDS:
            form = _FORM_WORDS[last]
        elif memory is None and re.fullmatch(r"\d+gb?", last):
            memory = int(re.match(r"\d+", last).group())
        else:
            break
        parts.pop()
    return count, _norm("".join(parts)), memory, form


def _family(key: str, spec: str, memory: int | None, form: str | None) -> tuple[str, int | None, str | None]:
    names = _names()
    if key in names:
        return names[key], memory, form
    for word, canon in _FORM_WORDS.items():  # glued forms: H100SXM, H200NVL
        if form is None and key.endswith(word) and key[:-len(word)] in names:
            return names[key[:-len(word)]], memory, canon
    glued = re.fullmatch(r"(.+?)(\d+)gb?", key)  # glued memory: A10080GB
    if glued and memory is None and glued.group(1) in names:
        return names[glued.group(1)], int(glued.group(2)), form
    display = sorted({e.spec_name for es in _families().values() for e in es})
    close = difflib.get_close_matches(key, list(names), n=4, cutoff=0.5)
    close_display = sorted({_families()[names[c]][0].spec_name for c in close})
    raise ToolInputError("unknown_gpu", f"Unknown GPU {key!r} in hardware spec {spec!r}.",
                         (f"Closest known: {', '.join(close_display)}. " if close_display else "")
                         + f"Known GPUs: {', '.join(display)}.", flag="hardware")


def _pick(family: str, memory: int | None, form: str | None, spec: str) -> tuple[Gpu, list[Problem]]:
    entries = _families()[family]
    name = entries[0].spec_name
    if form:
        entries = [e for e in entries if _FORM_OF[e.form_factor] == form]
        if not entries:
            forms = sorted({_FORM_OF[e.form_factor] for e in _families()[family]})
            raise ToolInputError("unknown_gpu_form", f"{name} has no -{form} form.",
                                 f"{name} comes as: {', '.join(forms)}; or leave the form out.", flag="hardware")
    if memory is not None:
        fitting = [e for e in entries if abs(e.marketed_memory_gb - memory) <= 1]
        if not fitting:
            sizes = sorted({e.marketed_memory_gb for e in entries})
            raise ToolInputError("unknown_gpu_memory", f"{name}{'-' + form if form else ''} has no {memory} GB model.",
                                 f"Known sizes: {', '.join(f'{s}GB' for s in sizes)}; or leave the memory out.",
                                 flag="hardware")
        entries = fitting
    chosen = min(entries, key=lambda e: (not e.family_default, _FORM_PREFERENCE[e.form_factor], -e.marketed_memory_gb))
    family_entries = _families()[family]
    forms = {_FORM_OF[e.form_factor] for e in family_entries
             if memory is None or abs(e.marketed_memory_gb - memory) <= 1}
    sizes = {e.marketed_memory_gb for e in family_entries if _FORM_OF[e.form_factor] == _FORM_OF[chosen.form_factor]}
    unsaid = [word for word, ambiguous in (("form", form is None and len(forms) > 1),
                                           ("memory", memory is None and len(sizes) > 1)) if ambiguous]
    warnings = []
    if unsaid:
        alternatives = sorted({_canonical(1, e)[2:] for e in family_entries if e is not chosen})
        warnings.append(Problem(code="hardware_assumed", message=f"{spec.strip()!r} names no {' or '.join(unsaid)}; "
                                f"taken as {chosen.title} ({_describe_form(chosen)}).",
                                fix=f"Write the {' and '.join(unsaid)} to choose another: "
                                    f"{', '.join(alternatives)}.", flag="hardware"))
    return chosen, warnings


def _describe_form(e: Gpu) -> str:
    return {"nvswitch": "SXM with NVLink", "nvlink_bridge": "PCIe card with NVLink bridges",
            "pcie": "PCIe, no NVLink", "xgmi": "OAM with Infinity Fabric"}[e.interconnect_kind]


def _canonical(count: int, e: Gpu) -> str:
    """count x name - memory, plus the form where the family comes in several."""
    form = _FORM_OF[e.form_factor]
    several = len({_FORM_OF[x.form_factor] for x in _families()[e.family]}) > 1
    return f"{count}x{e.spec_name}-{e.marketed_memory_gb}GB" + (f"-{form}" if several and form in FORMS else "")


def _spec_interconnect(count: int, e: Gpu, warnings: list[Problem]) -> tuple[Interconnect, bool]:
    if count == 1:
        return "none", False
    if e.interconnect_kind == "nvswitch":
        if count > 8:
            warnings.append(Problem(code="multi_node", message=f"{count} {e.spec_name} GPUs is more than one 8-GPU "
                                    "board; NVLink is assumed only within a board.", flag="hardware"))
            return "mixed", False
        return "nvlink", True
    if e.interconnect_kind == "nvlink_bridge":
        if count <= (e.nvlink_bridge_max or 2):
            warnings.append(Problem(code="nvlink_bridge_assumed", message=f"The {count} {e.spec_name} NVL cards are "
                                    "assumed to be joined by NVLink bridges.", flag="hardware",
                                    fix="Run detect_gpus on the host to see the real links."))
            return "nvlink", True
        warnings.append(Problem(code="nvlink_partial", message=f"NVLink bridges join at most {e.nvlink_bridge_max} "
                                f"{e.spec_name} NVL cards; the rest talk over PCIe.", flag="hardware"))
        return "mixed", False
    if e.interconnect_kind == "xgmi":
        return "xgmi", False
    if not e.pcie_p2p:
        warnings.append(Problem(code="no_p2p", message=f"{e.title} has no NVLink and no PCIe peer-to-peer; traffic "
                                "between the GPUs goes through host memory.", flag="hardware"))
    return "pcie", False


def _from_entry(e: Gpu, count: int, origin: str, interconnect: Interconnect, all_nvlink: bool,
                warnings: list[Problem], **extra) -> ResolvedHardware:
    if not e.supported:
        warnings.append(Problem(code="gpu_not_supported", message=f"{e.title} ({e.vendor.upper()}) is recognised but "
                                "not supported by sglang-diffusion-mcp yet (ROCm).",
                                fix="Use NVIDIA GPUs for recommendations and runs.", flag="hardware"))
    memory = extra.pop("memory_gb", e.memory_gb)
    return ResolvedHardware(
        spec=_canonical(count, e), origin=origin, count=count, gpu=e.id, gpu_name=e.title, vendor=e.vendor,
        supported=e.supported, form_factor=e.form_factor, memory_gb=memory, total_memory_gb=round(memory * count, 2),
        compute_capability=extra.pop("compute_capability", None) or e.compute_capability,
        architecture=e.architecture, interconnect=interconnect, all_nvlink=all_nvlink, pcie_p2p=e.pcie_p2p,
        bandwidth_gbs=e.bandwidth_gbs, bf16_tflops=e.bf16_tflops, fp8_tflops=e.fp8_tflops, fp4_tflops=e.fp4_tflops,
        warnings=warnings, **extra)


def parse_hardware_spec(spec: str) -> ResolvedHardware:
    """Resolve a spec like '4xH100-80GB'; ToolInputError (with the grammar, or the closest names) if it can't."""
    if not isinstance(spec, str) or not spec.strip():
        raise _bad_spec(str(spec or ""), "is empty")
    count, key, memory, form = _split(spec)
    if not key:
        raise _bad_spec(spec, "names no GPU")
    if not 1 <= count <= MAX_COUNT:
        raise ToolInputError("bad_gpu_count", f"GPU count {count} in {spec!r} is out of range.",
                             f"Use 1 to {MAX_COUNT} GPUs.", flag="hardware")
    family, memory, form = _family(key, spec, memory, form)
    entry, warnings = _pick(family, memory, form, spec)
    interconnect, all_nvlink = _spec_interconnect(count, entry, warnings)
    return _from_entry(entry, count, "spec", interconnect, all_nvlink, warnings, input=spec)


def _detected_interconnect(result: DetectGpusResult, indices: list[int]) -> tuple[Interconnect, bool]:
    if len(indices) == 1:
        return "none", False
    chosen = set(indices)
    kinds = [link.kind for link in result.links if link.a in chosen and link.b in chosen]
    if not kinds or "unknown" in kinds:
        return "unknown", False
    if all(k == "nvlink" for k in kinds):
        return "nvlink", True
    return ("mixed" if "nvlink" in kinds else "pcie"), False


def hardware_from_detection(result: DetectGpusResult, use: Literal["idle", "all"] = "idle") -> ResolvedHardware:
    """Resolve what detect_gpus found: the idle GPUs (else all), of the most common model when mixed."""
    whole = [g for g in result.gpus if not g.mig_enabled]
    if not whole:
        why = "only MIG slices were found" if result.gpus else (
            next((w.message for w in result.warnings if w.code != "no_nvidia_gpu"), "no NVIDIA GPU was found"))
        raise ToolInputError("no_gpu_detected", f"No whole GPU to plan for here ({why}).",
                             f"Pass a hardware spec ({GRAMMAR}), e.g. {', '.join(EXAMPLES[:4])}.", flag="hardware")
    warnings: list[Problem] = []
    pool = [g for g in whole if g.idle] if use == "idle" else whole
    if not pool:
        pool = whole
        warnings.append(Problem(code="no_idle_gpu", message=f"No GPU is idle; all {len(whole)} are counted.",
                                fix="Free the GPUs first, or pass a hardware spec.", flag="hardware"))
    groups: dict[str, list[GpuInfo]] = defaultdict(list)
    for g in pool:
        groups[g.kb_gpu or g.name].append(g)
    gpus = max(groups.values(), key=lambda gs: (len(gs), -gs[0].index))
    if len(groups) > 1:
        warnings.append(Problem(code="mixed_gpus", message=f"The host mixes GPU models; planning for the "
                                f"{len(gpus)} x {gpus[0].name}.", flag="hardware",
                                fix="Set CUDA_VISIBLE_DEVICES to one model, or pass a hardware spec."))
    indices = [g.index for g in gpus]
    interconnect, all_nvlink = _detected_interconnect(result, indices)
    totals = [g.memory_total_mib for g in gpus if g.memory_total_mib]
    memory_gb = round(min(totals) / 1024, 2) if totals else None
    entry = loader.get("gpus", gpus[0].kb_gpu) if gpus[0].kb_gpu else None
    if entry is not None:
        return _from_entry(entry, len(gpus), "detected", interconnect, all_nvlink, warnings,  # type: ignore[arg-type]
                           gpu_indices=indices, compute_capability=gpus[0].compute_capability,
                           **({"memory_gb": memory_gb} if memory_gb else {}))
    warnings.append(Problem(code="unknown_gpu", message=f"{gpus[0].name!r} is not in the knowledge base; only its "
                            "memory and compute capability are known.", flag="hardware"))
    return ResolvedHardware(spec=f"{len(gpus)}x{_norm(gpus[0].name)}", origin="detected", count=len(gpus),
                            gpu_name=gpus[0].name, memory_gb=memory_gb or 0.0,
                            total_memory_gb=round((memory_gb or 0.0) * len(gpus), 2),
                            compute_capability=gpus[0].compute_capability, architecture=gpus[0].architecture,
                            interconnect=interconnect, all_nvlink=all_nvlink, gpu_indices=indices, warnings=warnings)


def resolve_hardware(spec: str | None = None, detected: DetectGpusResult | None = None,
                     detect: Callable[[], DetectGpusResult] | None = None) -> ResolvedHardware:
    """The spec when given; else what detect_gpus finds (run now unless `detected` is passed)."""
    if spec is not None and str(spec).strip():
        return parse_hardware_spec(spec)
    if detected is None:
        from .detect_gpus import detect_gpus

        detected = (detect or detect_gpus)()
    return hardware_from_detection(detected)
