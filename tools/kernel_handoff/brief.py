"""The Markdown hand-off brief for an sglang kernel skill: everything needed to reproduce, judge and accept."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ...knowledge import loader
from ...knowledge.schema import KernelSkill
from .context import HandoffContext
from .findings import Findings, KernelFinding
from .next_steps import NextStep

MIN_E2E_GAIN_PCT = 1.5  # SGLang's PR bar (benchmark-profile skill, 0.5.19+): mean e2e, same-GPU ABBA runs

# Where the code for each kind of work lives in sglang (paths relative to the sglang package, 0.5.10+).
CODE_BY_KIND = {
    "attention": "multimodal_gen/runtime/layers/attention/ (layer.py, selector.py, backends/); the backend is "
                 "chosen in multimodal_gen/runtime/platforms/cuda.py",
    "gemm": "multimodal_gen/runtime/layers/linear.py and layers/quantization/; the DiT in "
            "multimodal_gen/runtime/models/dits/",
    "norm_elementwise": "multimodal_gen/runtime/layers/layernorm.py, elementwise.py, rotary_embedding/; kernels in "
                        "jit_kernel/diffusion/triton/, jit_kernel/diffusion/cutedsl/, jit_kernel/csrc/diffusion/",
    "communication": "multimodal_gen/runtime/layers/usp.py, layers/attention/turbo_layer.py; "
                     "multimodal_gen/runtime/distributed/",
    "other": "the model's DiT in multimodal_gen/runtime/models/dits/ (and vaes/ for decode work)",
}


class Baseline(BaseModel):
    """Numbers from an unprofiled perf dump (a profiled run's timings include the profiler's overhead)."""

    source: str | None = Field(default=None, description="The perf dump (or run) they come from.")
    total_ms: float | None = None
    denoise_ms: float | None = None
    steps: int | None = None
    mean_step_ms: float | None = None
    peak_reserved_gb: float | None = Field(default=None, description="GiB.")
    missing_reason: str | None = Field(default=None, description="Why there are no baseline numbers.")


def _fmt(value: float | None, unit: str = " ms") -> str:
    return "unknown" if value is None else f"{value:,.1f}{unit}"


def _shape(ctx: HandoffContext) -> str:
    w, h, frames = ctx.flags.get("--width"), ctx.flags.get("--height"), ctx.flags.get("--num-frames")
    size = f"{w}x{h}" if w and h else (ctx.flags.get("--size") or "model default size")
    return size + (f", {frames} frames" if frames else "")


def _tolerance(hotspot: KernelFinding | None) -> str:
    types = str(hotspot.input_types) if hotspot and hotspot.input_types else ""
    fp32_only = types and "float" in types.lower() and "half" not in types.lower() and "bfloat" not in types.lower()
    kernel = ("rtol=1e-5, atol=1e-6 (fp32)" if fp32_only else
              "rtol=atol=1e-2 for bf16/fp16 (rtol=1e-5, atol=1e-6 for fp32)")
    return (f"Kernel output matches the PyTorch reference with torch.testing.assert_close, {kernel}, on every "
            "listed shape. End to end: a change that claims to be lossless keeps generated images/videos "
            "byte-identical (request quality=exact where the release has it); otherwise report aggregate and "
            "worst-frame SSIM/PSNR against the unchanged output (sglang's defaults: 0.95 / 28 dB for images, "
            "0.92 / 24 dB for video).")


def render_brief(f: Findings, ctx: HandoffContext, steps: list[NextStep], baseline: Baseline,
                 hotspot: KernelFinding | None, skill: KernelSkill | None, skill_note: str | None) -> str:
    gpu = f"{ctx.gpu_count or '?'}x {ctx.gpu_name or 'unknown GPU'}"
    cc = f" (compute capability {ctx.compute_capability})" if ctx.compute_capability else ""
    title = f"{hotspot.family} ({hotspot.kind})" if hotspot else (f.dominant_kind or "the slow run")
    lines = [f"# Kernel hand-off: {title} in {ctx.model or 'unknown model'} on {gpu}", ""]
    if skill:
        where = "; ".join(f"{loc.path} (sglang {loc.releases.since}-{loc.releases.until or 'now'})"
                          for loc in skill.locations)
        lines += [f"**Target skill:** `{skill.skill}` - {where}." + (f" Note: {skill_note}" if skill_note else ""),
                  f"It expects: {', '.join(skill.inputs)}.", ""]
    lines += ["## Reproduce (unprofiled)", "",
              "Run it with run_generate (profile=false, or profile=true for a trace): it adds warmup, a fresh "
              "--perf-dump-path and output path in a new run folder, and SGLANG_DIFFUSION_SYNC_STAGE_PROFILING=1, "
              "so the profiled run's evidence is never overwritten.", "", "```bash",
              ctx.reproduce or "# command unknown: pass `command` or a run_id", "```", "",
              f"- sglang: {ctx.version or 'unknown'}", f"- model: {ctx.model or 'unknown'}"
              + (f" (family {ctx.model_family})" if ctx.model_family else ""),
              f"- GPUs: {gpu}{cc}", f"- shape: {_shape(ctx)}",
              f"- steps: {baseline.steps or ctx.flags.get('--num-inference-steps') or 'model default'}", ""]
    lines += [f"## Baseline (unprofiled perf dump{': ' + baseline.source if baseline.source else ''})", ""]
    if baseline.missing_reason:
        lines += [f"**Missing:** {baseline.missing_reason}", ""]
    else:
        lines += ["| metric | value |", "| --- | --- |", f"| end-to-end | {_fmt(baseline.total_ms)} |",
                  f"| denoise (primary) | {_fmt(baseline.denoise_ms)} |",
                  f"| steps | {baseline.steps if baseline.steps is not None else 'unknown'} |",
                  f"| mean step | {_fmt(baseline.mean_step_ms)} |",
                  f"| peak reserved | {_fmt(baseline.peak_reserved_gb, ' GiB')} |", ""]
    if f.trace:
        t = f.trace
        lines += [f"## Where the GPU time goes ({t.scope}; trace `{t.path}`)", "",
                  "| kind | ms | share of GPU window |", "| --- | --- | --- |"]
        lines += [f"| {k.kind} | {k.time_ms:,.1f} | {k.share_pct:.1f} % |" for k in t.kinds if k.time_ms > 0]
        lines.append("")
    if hotspot:
        lines += ["## Hotspot", "", f"- kernel: `{hotspot.name}`",
                  f"- kind/family: {hotspot.kind} / {hotspot.family}"
                  + (" (an existing sglang kernel)" if hotspot.sglang_kernel else ""),
                  f"- share: {hotspot.share_pct:.1f} % of the GPU window, {hotspot.count} launches, "
                  f"mean {hotspot.mean_us:,.1f} us, max {hotspot.max_us:,.1f} us",
                  f"- launched by: `{hotspot.op or 'unknown op (no External id link in the trace)'}`",
                  f"- input shapes: {hotspot.input_dims if hotspot.input_dims is not None else 'not recorded'}",
                  f"- input dtypes: {hotspot.input_types if hotspot.input_types is not None else 'not recorded'}", ""]
    fast = [s for s in steps if s.category == "fast_path"]
    lines += ["## Existing fast paths checked", ""]
    lines += [f"- `{s.fast_path_id}`: {s.title.split(': ', 1)[-1]}" for s in fast] or \
        ["- none in the knowledge base covers this hotspot for this release and model"]
    flags = [s for s in steps if s.category == "flag"]
    if flags:
        lines += ["", "## Flags to rule out first", ""]
        lines += [f"- {s.title}: `{' '.join(s.add_flags)}`" + (" (lossy)" if s.lossy else "") for s in flags]
    lines += ["", "## Acceptance criteria", "", f"- Numerical: {_tolerance(hotspot)}",
              f"- Speed: at least {MIN_E2E_GAIN_PCT} % mean end-to-end improvement over the baseline in repeated "
              "same-GPU ABBA runs (baseline, candidate, candidate, baseline), unprofiled, with "
              "SGLANG_DIFFUSION_SYNC_STAGE_PROFILING=1 and the same command, seed, shape, steps and GPUs; denoise "
              "time must not regress.",
              "- Evidence: before/after perf dumps (compare_perf), one representative profile, and the output "
              "image or video.", "", "## Where the code lives", ""]
    kinds = [hotspot.kind] if hotspot else []
    kinds += [s.addresses for s in steps if s.addresses in CODE_BY_KIND and s.addresses not in kinds]
    lines += [f"- {k}: {CODE_BY_KIND[k]}" for k in kinds[:3] if k in CODE_BY_KIND]
    for s in fast[:3]:
        entry = loader.get("fast_paths", s.fast_path_id or "")
        if entry is not None:
            lines.append(f"- fast path `{s.fast_path_id}`: {getattr(entry, 'where', '')}")
    return "\n".join(lines) + "\n"
