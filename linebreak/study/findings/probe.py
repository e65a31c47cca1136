"""Findings of the probe stage: the count probe and the geometry of the count manifold."""

from __future__ import annotations

from linebreak.study.findings.common import _f
from linebreak.study.report import Finding


def _best_layer(layers: dict) -> str:
    """The analysed layer whose count probe has the highest held-out R^2 (where the count lives)."""
    def r2(k):
        v = layers[k]["probes"]["count"]["r2_test"]
        return -1.0 if v is None else v
    return max(layers, key=r2)


def _geom(layer: dict) -> dict:
    c = layer["centroids"]
    return {"r2": layer["probes"]["count"]["r2_test"], "top6": c["pca"]["top6"], "pc1": c["pca"]["ratio"][0],
            "sign_changes": c["ringing"]["sign_changes"], "first_negative": c["ringing"]["first_negative"],
            "second_positive": c["ringing"]["second_positive"], "helix_periods": c["helix"]["periods"],
            "helix_gain": c["helix"].get("r2_helix", 0) - c["helix"].get("r2_line", 0),
            "rmse": layer["count_probes"]["rmse_test"]}


def manifold_findings(summary: dict, figs: dict) -> list[Finding]:
    model, control = summary["model"], summary.get("control", {})
    key = _best_layer(model)
    g, c = _geom(model[key]), (_geom(control[key]) if key in control else None)
    ctrl = (lambda name, fmt: f" (random-init control: {fmt.format(c[name])})") if c else (lambda *_: "")
    s = "Character-count manifold"
    return [
        _f("count_probe_r2", s, f"A linear probe reads the character count with held-out R^2 {g['r2']:.3f} at "
           f"{key}{ctrl('r2', '{:.3f}')}.", g["r2"], "count_probe_r2", [["r2", g["r2"], ">=", 0.95]],
           figs.get("r2"), layer=key),
        _f("top6_pca_share", s, f"The per-count means at {key} put {100 * g['top6']:.1f} % of their variance in "
           f"the top 6 PCs and {100 * g['pc1']:.1f} % in PC1 alone{ctrl('pc1', 'PC1 {:.3f}')}; a helix-like "
           "manifold needs both: >= 90 % in 6 PCs with PC1 < 70 %.", g["top6"], "top6_pca_share",
           [["top6", g["top6"], ">=", 0.9], ["pc1", g["pc1"], "<", 0.7]], figs.get("helix"), layer=key),
        _f("ringing_sign_changes", s, f"The similarity between counts changes sign {g['sign_changes']} time(s) "
           f"along the off-diagonals (first negative lobe {g['first_negative']:.2f}, next positive lobe "
           f"{g['second_positive']:.2f}){ctrl('sign_changes', '{} sign change(s)')}.", g["sign_changes"],
           "ringing_sign_changes", [["sign_changes", g["sign_changes"], ">=", 2]], figs.get("similarity"),
           layer=key),
        _f("helix_fit", s, f"A helix fit (line plus cos/sin of period T) picks periods {g['helix_periods']} and "
           f"improves R^2 over the straight line by {g['helix_gain']:.3f}.", g["helix_gain"], None, [],
           figs.get("helix"), layer=key),
    ]
