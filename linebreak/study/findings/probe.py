"""Findings of the probe stage: the count probe and the geometry of the count manifold.

:func:`best_layer` (where the count lives) and :func:`geometry` (the headline numbers of one layer) are also
what the sweep compares across runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from linebreak.probe.result import ProbeLayer, ProbeResult
from linebreak.rules.probe import (
    COUNT_PROBE_R2_MIN,
    PC1_SHARE_MAX,
    RINGING_DEAD_ZONE,
    RINGING_SMOOTH_MIN,
    SIGN_CHANGES_MIN,
    TOP6_SHARE_MIN,
)
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


def probe_findings(model: ProbeResult, control: ProbeResult | None, figs: dict,
                   gate: dict | None = None) -> list[Finding]:
    """The count probe, the PC spectrum, ringing and the helix fit at the best layer. ``gate`` is the gated
    ringing of the model beside its control in one count window (:func:`linebreak.probe.ringing.compare`):
    with it, the ringing finding counts only sign changes that noise cannot fake, and asks that the control
    does not ring in the same window."""
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
        _ringing_finding(g, gate, ctrl, s, figs, key),
        _f("helix_fit", s, f"A helix fit (line plus cos/sin of period T) picks periods {g.helix_periods} and "
           f"improves R^2 over the straight line by {g.helix_gain:.3f}.", g.helix_gain, None, [],
           figs.get("helix"), layer=key),
    ]


def _ringing_finding(g: LayerNumbers, gate: dict | None, ctrl, s: str, figs: dict, key: str) -> Finding:
    """Ringing: the similarity-by-lag profile's sign changes; behind the gate when there is one."""
    sentence = (f"The similarity between counts changes sign {g.sign_changes} time(s) along the off-diagonals "
                f"(first negative lobe {g.first_negative:.2f}, next positive lobe {g.second_positive:.2f})"
                f"{ctrl('sign_changes', '{} sign change(s)')}")
    if gate is None:
        return _f("ringing_sign_changes", s, sentence + ".", g.sign_changes, "ringing_sign_changes",
                  [["sign_changes", g.sign_changes, ">=", SIGN_CHANGES_MIN]], figs.get("similarity"), layer=key)
    m, c = gate["model"], gate["control"]

    def read(r):
        return (f"{r['sign_changes']} sign change(s), {r['ripples']} ripple(s)" if r["gate_open"]
                else f"gate closed ({r['reason']})")
    lo, hi = gate["window"]
    sentence += (f". Behind the ringing gate (lag-1 cosine >= {RINGING_SMOOTH_MIN}, dead zone "
                 f"+/-{RINGING_DEAD_ZONE}, counts {lo:.0f}-{hi:.0f} for both): the model reads {read(m)}, its "
                 f"random-init control {read(c)}.")
    return _f("ringing_sign_changes", s, sentence, m["sign_changes"], "ringing_sign_changes",
              [["gated sign_changes", m["sign_changes"], ">=", SIGN_CHANGES_MIN],
               ["control gated sign_changes", c["sign_changes"], "<", SIGN_CHANGES_MIN]],
              figs.get("similarity"), layer=key, ungated_sign_changes=g.sign_changes,
              gate={k: {f: r[f] for f in ("gate_open", "reason", "smoothness", "sign_changes", "ripples", "turns",
                                          "rings")} for k, r in (("model", m), ("control", c))} | {"window": [lo, hi]})
