"""Findings of the probe stage: the count probe and the geometry of the count manifold.

:func:`best_layer` (where the count lives) and :func:`geometry` (the headline numbers of one layer) are also
what the sweep compares across runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from linebreak.probe.result import ProbeLayer, ProbeResult
from linebreak.rules.probe import COUNT_PROBE_R2_MIN, PC1_SHARE_MAX, SIGN_CHANGES_MIN, TOP6_SHARE_MIN
from linebreak.study.findings.common import _f
from linebreak.study.report import Finding


def _defined(x):
    """``x``, or None where it is not defined (NaN; stored as null in JSON)."""
    return None if x is None or x != x else x


def best_layer(result: ProbeResult) -> str:
    """The analysed layer whose count probe has the highest held-out R^2 (where the count lives)."""
    def r2(k):
        v = _defined(result.layers[k].probes["count"].r2_test)
        return -1.0 if v is None else v
    return max(result.layers, key=r2)


@dataclass(frozen=True)
class LayerNumbers:
    """The headline numbers of one layer (None: not defined for this model)."""

    r2: float | None  # held-out R^2 of the count probe
    top6: float  # variance share of the centroids' top 6 PCs
    pc1: float  # ... and of PC1 alone
    sign_changes: int
    first_negative: float
    second_positive: float
    helix_periods: list[int]
    helix_gain: float | None  # helix R^2 minus straight-line R^2
    rmse: float | None  # RMSE (characters) of the per-count probes' argmax


def geometry(layer: ProbeLayer) -> LayerNumbers:
    c, h = layer.centroids, layer.centroids.helix
    r2_helix, r2_line = _defined(h.r2_helix), _defined(h.r2_line)
    return LayerNumbers(r2=_defined(layer.probes["count"].r2_test), top6=c.pca.top6, pc1=float(c.pca.ratio[0]),
                        sign_changes=c.ringing.sign_changes, first_negative=c.ringing.first_negative,
                        second_positive=c.ringing.second_positive, helix_periods=h.periods,
                        helix_gain=None if r2_helix is None or r2_line is None else r2_helix - r2_line,
                        rmse=_defined(layer.count_probes.rmse_test))


def probe_findings(model: ProbeResult, control: ProbeResult | None, figs: dict) -> list[Finding]:
    key = best_layer(model)
    g = geometry(model.layers[key])
    c = geometry(control.layers[key]) if control is not None and key in control.layers else None
    ctrl = (lambda name, fmt: f" (random-init control: {fmt.format(getattr(c, name))})") if c else (lambda *_: "")
    s = "Character-count manifold"
    return [
        _f("count_probe_r2", s, f"A linear probe reads the character count with held-out R^2 {g.r2:.3f} at "
           f"{key}{ctrl('r2', '{:.3f}')}.", g.r2, "count_probe_r2", [["r2", g.r2, ">=", COUNT_PROBE_R2_MIN]],
           figs.get("r2"), layer=key),
        _f("top6_pca_share", s, f"The per-count means at {key} put {100 * g.top6:.1f} % of their variance in "
           f"the top 6 PCs and {100 * g.pc1:.1f} % in PC1 alone{ctrl('pc1', 'PC1 {:.3f}')}; a helix-like "
           f"manifold needs both: >= {100 * TOP6_SHARE_MIN:.0f} % in 6 PCs with PC1 < {100 * PC1_SHARE_MAX:.0f} %.",
           g.top6, "top6_pca_share", [["top6", g.top6, ">=", TOP6_SHARE_MIN], ["pc1", g.pc1, "<", PC1_SHARE_MAX]],
           figs.get("helix"), layer=key),
        _f("ringing_sign_changes", s, f"The similarity between counts changes sign {g.sign_changes} time(s) "
           f"along the off-diagonals (first negative lobe {g.first_negative:.2f}, next positive lobe "
           f"{g.second_positive:.2f}){ctrl('sign_changes', '{} sign change(s)')}.", g.sign_changes,
           "ringing_sign_changes", [["sign_changes", g.sign_changes, ">=", SIGN_CHANGES_MIN]],
           figs.get("similarity"), layer=key),
        _f("helix_fit", s, f"A helix fit (line plus cos/sin of period T) picks periods {g.helix_periods} and "
           f"improves R^2 over the straight line by {g.helix_gain:.3f}.", g.helix_gain, None, [],
           figs.get("helix"), layer=key),
    ]
