"""Fit the activation and allocator-overhead model to the H100 DiT-forward calibration, and report its error.

Run: .venv/bin/python scripts/fit_activation.py [path/to/dit-forward-h100.jsonl]
Prints, per calibration model, the fitted MiB-per-token slope (with the shared intercept) and allocator base,
next to the values stored in knowledge/data/models.yaml, then the error of the stored model on every point.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from sglang_diffusion_mcp.knowledge import activation
from sglang_diffusion_mcp.knowledge.models_lookup import identify_model

DEFAULT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "calibration" / "dit-forward-h100.jsonl"


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fit(rows: list[dict]) -> tuple[float, dict[str, float]]:
    """Shared intercept (MiB) and per-model slopes minimising the squared relative error."""
    groups = defaultdict(list)
    for r in rows:
        groups[r["model"]].append((r["tokens"], (r["peak_alloc_gib"] - r["weights_gib"]) * 1024))
    best = None
    for c0 in range(0, 201):
        slopes, err = {}, 0.0
        for name, pts in groups.items():
            k = sum((a - c0) * t / a**2 for t, a in pts) / sum(t * t / a**2 for t, a in pts)
            slopes[name] = k
            err += sum(((c0 + k * t) / a - 1) ** 2 for t, a in pts)
        if best is None or err < best[0]:
            best = (err, float(c0), slopes)
    return best[1], best[2]


def _fit_formula(points: list[tuple[int, int, float]]) -> tuple[float, float]:
    """Least squares on relative error for k = a * ffn + b * hidden (2x2 normal equations)."""
    sxx = sum((f / k) ** 2 for f, h, k in points)
    syy = sum((h / k) ** 2 for f, h, k in points)
    sxy = sum(f * h / k**2 for f, h, k in points)
    sx1 = sum(f / k for f, h, k in points)
    sy1 = sum(h / k for f, h, k in points)
    det = sxx * syy - sxy**2
    return (sx1 * syy - sy1 * sxy) / det, (sy1 * sxx - sx1 * sxy) / det


def errors(rows: list[dict]) -> list[tuple[str, list, float, float, float, float]]:
    """(model, shape, measured act GiB, estimated act GiB, measured overhead GiB, estimated overhead GiB)."""
    out = []
    for r in rows:
        model = identify_model(r["model"]).model
        shape = r["shape"]
        frames = shape[2] if len(shape) == 3 else 1
        est = activation.estimate_activation(model, height=shape[0], width=shape[1], frames=frames)
        out.append((r["model"], shape, r["peak_alloc_gib"] - r["weights_gib"], est.activation_gb,
                    r["peak_reserved_gib"] - r["peak_alloc_gib"], est.allocator_overhead_gb))
    return out


def main() -> None:
    rows = load(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
    c0, slopes = fit(rows)
    print(f"fitted intercept {c0:.0f} MiB (stored {activation.INTERCEPT_MIB:.0f})")
    for name, k in slopes.items():
        m = identify_model(name).model
        print(f"  {name:18s} fitted {k:.4f} MiB/token   stored {m.activation_mib_per_token:.4f} ({m.id})")
    act_err, ovh_err = [], []
    print("model              shape             act meas/est GiB   err   overhead meas/est GiB  err")
    for name, shape, act, est, ovh, est_ovh in errors(rows):
        e1, e2 = est / act - 1, est_ovh / ovh - 1
        act_err.append(abs(e1))
        ovh_err.append(abs(e2))
        print(f"{name:18s} {str(shape):17s} {act:6.3f} / {est:6.3f} {e1:+6.1%}   "
              f"{ovh:6.3f} / {est_ovh:6.3f} {e2:+6.1%}")
    print(f"activation: median |error| {statistics.median(act_err):.1%}, max {max(act_err):.1%}")
    print(f"allocator overhead: median |error| {statistics.median(ovh_err):.1%}, max {max(ovh_err):.1%}")
    print("leave-one-out (slope refitted without the point, models with 2+ points):")
    loo = []
    for i, r in enumerate(rows):
        others = [o for j, o in enumerate(rows) if j != i and o["model"] == r["model"]]
        if not others:
            continue
        k = statistics.mean(((o["peak_alloc_gib"] - o["weights_gib"]) * 1024 - c0) / o["tokens"] for o in others)
        act = (r["peak_alloc_gib"] - r["weights_gib"]) * 1024
        loo.append(abs((c0 + k * r["tokens"]) / act - 1))
        print(f"  {r['model']:18s} {str(r['shape']):17s} {(c0 + k * r['tokens']) / act - 1:+6.1%}")
    print(f"  median |error| {statistics.median(loo):.1%}, max {max(loo):.1%}")
    print("two-parameter formula k = a * ffn_dim + b * hidden_size over the measured models:")
    ms = [identify_model(n).model for n in slopes]
    a, b = _fit_formula([(m.ffn_dim, m.hidden_size, slopes[n]) for n, m in zip(slopes, ms)])
    print(f"  a = {a:.3e}, b = {b:.3e}")
    for m in (identify_model(n).model for n in slopes):
        guess = a * m.ffn_dim + b * m.hidden_size
        print(f"  {m.id:16s} formula {guess:.4f} vs measured {m.activation_mib_per_token:.4f}")
    print("derived-slope check (each measured slope predicted from another model by hidden-size ratio):")
    measured = {identify_model(n).model.id: identify_model(n).model for n in slopes}
    for mid, m in measured.items():
        for oid, o in measured.items():
            if oid != mid:
                guess = o.activation_mib_per_token * m.hidden_size / o.hidden_size
                print(f"  {mid:16s} from {oid:16s} {guess / m.activation_mib_per_token - 1:+6.1%}")


if __name__ == "__main__":
    main()
