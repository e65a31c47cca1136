"""Measure and draw the paper's toy models (Gurnee et al. 2025, section 7) and the ringing gate's test cases.

    .venv/bin/python scripts/toy_models.py            # writes figures/toys/*.png and figures/toys/toys.json

The truncated kernel (a Gaussian of width w over n counts, cyclic or a line, kept to its top k modes) is swept
over w for several k; the sphere simulation over d and w with three seeds; the gate reads noise, a random
walk, planted helices and a ramp. Every number a figure shows is in ``toys.json`` (the heatmaps are
``manifold.cosine_matrix`` of the stored ``points``; one line of JSON, ``python -m json.tool`` to read it).
Fixed seeds: the same command writes the same numbers.
Runs in well under a minute on one CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from linebreak.io import UserError, save_json
from linebreak.plots import toys as P
from linebreak.probe import manifold, ringing, toys

N = 100                       # counts in every toy (the paper's 100 points)
KS = (4, 6, 10)               # dimension budgets of the truncated kernel (6: the paper's manifold)
WIDTHS = (40, 20, 14, 10, 7, 5, 3.5, 2.5, 1.5, 1)
DIMS = (3, 4, 5, 6, 7, 8)
SPHERE_W = (2, 3, 4, 6, 8, 12)
SEEDS = (0, 1, 2)
FWHM_PER_SIGMA = 2 * np.sqrt(2 * np.log(2))


def brief(g: dict) -> dict:
    """A gated reading without its profile (the profile is stored once, where it is drawn)."""
    return {k: v for k, v in g.items() if k != "profile"}


def reading(E) -> dict:
    m = toys.measure(E)
    return {"gated": brief(m["gated"]), "peak_width": m["peak_width"], "dim95": m["dim95"], "top3": m["top3"],
            "top6": m["top6"], "gap_6": m["gap_6"], "key_frequencies": m["key_frequencies"],
            "helix_periods": m["helix_periods"], "pca_ratio": m["pca_ratio"][:6]}


def panel(E, title: str) -> dict:
    m = toys.measure(E)
    return {"title": title, "coords": np.round(m["coords"], 4), "ratio": m["pca_ratio"], "cos": m["cos"],
            "profile": np.round(m["gated"]["profile"], 4), "points": np.round(np.asarray(E), 4)}


def circulant() -> dict:
    rows = []
    for cyclic in (False, True):
        for k in KS:
            for w in WIDTHS:
                t = toys.truncated_kernel(N, w, k, cyclic)
                rows.append({"cyclic": cyclic, "k": k, "w": w, "kernel_fwhm": manifold.peak_width(t["kernel"]),
                             "range_over_fwhm": N / manifold.peak_width(t["kernel"]),
                             "top_k_share": float(t["eigenvalues"][:k].sum()), **reading(t["embedding"])})
    E2 = toys.truncated_kernel(N, 3, 2, True)["embedding"]
    i = np.arange(N)
    F = np.linalg.qr(np.column_stack([np.cos(2 * np.pi * i / N), np.sin(2 * np.pi * i / N)]))[0]
    U = E2 / np.linalg.norm(E2, axis=0)
    E6 = toys.truncated_kernel(N, 3, 6, True)["embedding"]
    G, low = E6 @ E6.T, toys.lowpass_row(N, 3, 6)
    checks = {"top2_share_in_frequency_1": float(np.linalg.norm(F.T @ U) ** 2 / 2),
              "gram_vs_lowpass_max_error": float(np.abs(G - np.stack([np.roll(low, r) for r in range(N)])).max())}
    return {"rows": rows, "checks": checks}


def sphere() -> list[dict]:
    rows = []
    for d in DIMS:
        for w in SPHERE_W:
            for seed in SEEDS:
                r = toys.sphere_chain(N, d, w, seed=seed)
                rows.append({"d": d, "w": w, "seed": seed, "energy": float(r["energy"][-1]),
                             **reading(r["points"])})
    return rows


def prototype_widths(k: int = 6) -> list[dict]:
    """The issue's two cases as truncated line kernels: a 20-character peak over 80 counts (the prototype),
    and about 6 over 150 (Haiku)."""
    out = []
    for fwhm, n in ((20, 80), (6, 150)):
        t = toys.truncated_kernel(n, fwhm / FWHM_PER_SIGMA, k, cyclic=False)
        out.append({"fwhm": fwhm, "n": n, "k": k, **reading(t["embedding"])})
    return out


def gate_cases() -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(0)
    i = np.arange(N)
    cases = {f"noise d=64 seed {s}": np.random.default_rng(s).normal(size=(80, 64)) for s in SEEDS}
    cases.update({f"random walk seed {s}": np.cumsum(np.random.default_rng(s).normal(size=(80, 64)), 0)
                  for s in SEEDS})
    for f in (1, 2, 3):
        cases[f"helix f={f}"] = np.column_stack([np.cos(2 * np.pi * f * i / N), np.sin(2 * np.pi * f * i / N),
                                                 (i - i.mean()) / N]) @ np.linalg.qr(rng.normal(size=(64, 3)))[0].T
    cases["ramp"] = (np.arange(40) - 19.5)[:, None] * np.ones((1, 8))
    read = {name: brief(ringing.gated_ringing(C)) for name, C in cases.items()}
    shown = [panel(cases[n], n) for n in ("noise d=64 seed 0", "random walk seed 0", "helix f=2", "ramp")]
    return read, shown


def _series(rows, metric: str, x_key: str, xs, group_key: str, groups) -> dict:
    """``{"<group_key>=g": [seeds][len(xs)]}`` of one number (a gated one, or a top-level one) of the sphere rows."""
    def val(r):
        return r["gated"][metric] if metric in r["gated"] else r[metric]

    return {f"{group_key}={g}": [[val(next(r for r in rows if r[group_key] == g and r[x_key] == x and r["seed"] == s))
                                  for x in xs] for s in SEEDS] for g in groups}


def figures(out: Path, circ: dict, sph: list[dict], gate_panels: list[dict]) -> tuple[list[Path], dict]:
    line = [r for r in circ["rows"] if not r["cyclic"]]
    written = []
    shown = [(c, w) for c in (False, True) for w in (20, 5, 1)]
    pans = [panel(toys.truncated_kernel(N, w, 6, c)["embedding"], f"{'cyclic' if c else 'line'}, k=6, w={w}")
            for c, w in shown]
    written.append(P.embeddings_figure(pans, "truncated Gaussian kernel, top-6 modes, top-3 PCs",
                                       out / "circulant_pcs.png"))
    written.append(P.similarity_figure(pans[:3] + pans[4:5], ringing.DEAD_ZONE,
                                       "truncated kernel: cosine similarity over counts",
                                       out / "circulant_similarity.png"))
    sp = [(3, 2), (6, 6), (6, 2), (8, 2), (3, 8), (8, 8)]
    spans = [panel(toys.sphere_chain(N, d, w, seed=0)["points"], f"sphere d={d}, w={w}, seed 0") for d, w in sp]
    written.append(P.embeddings_figure(spans, "sphere simulation (100 points), top-3 PCs", out / "sphere_pcs.png"))
    written.append(P.similarity_figure([spans[i] for i in (5, 2, 0, 3)], ringing.DEAD_ZONE,
                                       "sphere simulation: cosine similarity over counts",
                                       out / "sphere_similarity.png"))
    rw = [r["range_over_fwhm"] for r in line if r["k"] == KS[0]]
    byk = {f"k={k}": [r["gated"]["ripples"] for r in line if r["k"] == k] for k in KS}
    sck = {f"k={k}": [r["gated"]["sign_changes"] for r in line if r["k"] == k] for k in KS}
    written.append(P.counts_figure([
        {"x": rw, "xlabel": "range / peak width (n / FWHM)", "ylabel": "gated ripples", "logx": True,
         "title": "truncated line kernel: ripples", "series": byk},
        {"x": rw, "xlabel": "range / peak width (n / FWHM)", "ylabel": "gated sign changes", "logx": True,
         "title": "truncated line kernel: sign changes", "series": sck},
        {"x": SPHERE_W, "xlabel": "attracting range w", "ylabel": "gated ripples (3 seeds)",
         "title": "sphere: ripples against w", "series": _series(sph, "ripples", "w", SPHERE_W, "d", (3, 6, 8))},
    ], "ringing against the width of the similarity", out / "rings_vs_w.png"))
    written.append(P.counts_figure([
        {"x": DIMS, "xlabel": "dimensions d", "ylabel": "gated ripples (3 seeds)", "title": "sphere: ripples",
         "series": _series(sph, "ripples", "d", DIMS, "w", (2, 4, 8))},
        {"x": DIMS, "xlabel": "dimensions d", "ylabel": "gated sign changes (3 seeds)",
         "title": "sphere: sign changes",
         "series": _series(sph, "sign_changes", "d", DIMS, "w", (2, 4, 8))},
        {"x": DIMS, "xlabel": "dimensions d", "ylabel": "similarity peak width (counts)",
         "title": "sphere: peak width", "series": _series(sph, "peak_width", "d", DIMS, "w", (2, 4, 8))},
    ], "sphere simulation against its dimension", out / "rings_vs_d.png"))
    written.append(P.similarity_figure(gate_panels, ringing.DEAD_ZONE, "the ringing gate's test cases",
                                       out / "gate_cases.png"))
    return written, {"circulant": pans, "sphere": spans, "gate": gate_panels, "x_range_over_fwhm": rw,
                     "ripples_by_k": byk, "sign_changes_by_k": sck}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("figures/toys"))
    a = p.parse_args(argv)
    t0 = time.time()
    try:
        circ, sph, proto = circulant(), sphere(), prototype_widths()
        gate_read, gate_panels = gate_cases()
        written, drawn = figures(a.out, circ, sph, gate_panels)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    drawn = {k: ([{kk: vv for kk, vv in d.items() if kk != "cos"} for d in v] if isinstance(v, list) and v
                 and isinstance(v[0], dict) else v) for k, v in drawn.items()}
    save_json(a.out / "toys.json", {
        "command": "python scripts/toy_models.py", "n": N, "seeds": list(SEEDS),
        "gate": {"smooth_min": ringing.SMOOTH_MIN, "dead_zone": ringing.DEAD_ZONE, "min_pairs": ringing.MIN_PAIRS,
                 "cases": gate_read},
        "circulant": circ, "sphere": sph, "prototype_widths": proto, "drawn": drawn}, indent=None)
    for w in written + [a.out / "toys.json"]:
        print(w)
    print(f"{time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
