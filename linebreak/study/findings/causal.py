"""Findings of the causal stage: ablations, key resampling, count patching (read from a
:class:`~linebreak.causal.result.CausalResult`; thresholds from :mod:`linebreak.rules.causal`)."""

from __future__ import annotations

import math

from linebreak.causal.result import CausalResult, HeadAblation
from linebreak.rules.causal import ABLATION_NEWLINE_RATIO, PATCHING_SPEARMAN
from linebreak.study.findings.common import _f, _num
from linebreak.study.report import Finding


def _j(x):
    """``x`` as ``causal.json`` holds it: ``None`` where it is not defined (NaN or infinite), so that a sentence
    needing it fails as undefined and a check on it is not decided (:func:`linebreak.study.findings.common.check`)."""
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _head_finding(key: str, what: str, h: HeadAblation, section: str) -> Finding:
    rand = _j(h.random.d_newline) if h.random is not None else float("nan")
    return _f(key, section, f"Ablating {what} {h.top_head} raises newline loss by {_j(h.top.d_newline):+.4f} nats and "
              f"other-token loss by {_j(h.top.d_other):+.4f}; a random head of the same layer ({h.random_head}) "
              f"raises newline loss by {rand:+.4f}.", _j(h.top.d_newline), None,
              [["top head beats random head", int(h.top_beats_random), "==", 1]])


def causal_findings(c: CausalResult, figs: dict) -> list[Finding]:
    sub, pat = c.subspace_ablation, c.patching
    s = "Causal checks"
    ratio = _j(sub.count_subspace.ratio)
    heads = [_head_finding("boundary_head_ablation", "the measured boundary head (largest attention response to "
                           "the previous newline as the line fills)", c.boundary_head_ablation, s),
             _head_finding("head_ablation", "the QK-top head", c.head_ablation, s)]
    if c.key_ablation:
        heads.append(_key_ablation_finding(c, s))
    first, last, rho = pat.curve[0], pat.curve[-1], _j(pat.spearman)
    return heads + [
        _f("subspace_ablation", s, f"Ablating the top-{sub.dim} PCA subspace of the count means at layer "
           f"{sub.layer} raises newline loss by {_j(sub.count_subspace.d_newline):+.4f} and other loss by "
           f"{_j(sub.count_subspace.d_other):+.4f} (ratio {ratio:.2f}); random {sub.dim}-D subspaces: "
           f"{_j(sub.random_mean['d_newline']):+.4f} / {_j(sub.random_mean['d_other']):+.4f}.", ratio,
           "ablation_newline_ratio", [["newline/other ratio", ratio, ">=", ABLATION_NEWLINE_RATIO],
                                      ["beats random", int(sub.beats_random_on_newline), "==", 1]]),
        _f("patching", s, f"Patching the count representation (the count effect with the width held fixed, at "
           f"layer {pat.layer}, one token per document) from {first.delta:+d} to {last.delta:+d} characters moves "
           f"P(newline) from {_j(first.p_newline):.3f} to {_j(last.p_newline):.3f}, Spearman {rho:.2f} across "
           f"shifts (monotone steps {100 * _j(pat.monotone_fraction):.0f} %).",
           rho, None, [["spearman", rho, ">=", PATCHING_SPEARMAN]]),
    ]


def _key_ablation_finding(c: CausalResult, section: str) -> Finding:
    """Does the boundary head's effect run through the width at the key? Its newline keys set to their mean,
    resampled from other newlines, or resampled among newlines ending lines of the same length, against the
    head removed (descriptive: a head that compares at the key loses its effect to the first two only)."""
    name = c.boundary_head_ablation.top_head
    k = c.key_ablation[name]
    parts = [f"{n} {_num(_j(v.mean.d_newline), '+.4f')} (mean), {_num(_j(v.resample.d_newline), '+.4f')} "
             f"(resampled), {_num(_j(v.resample_same_length.d_newline), '+.4f')} (resampled, same line length) "
             f"nats against {_num(_j(v.head_d_newline), '+.4f')} for removing it" for n, v in c.key_ablation.items()]
    share = {m: _j(v) for m, v in k.key_share.items()}
    return _f("key_ablation", section, "Taking away what a head's keys at newlines say about their line (each set "
              "to the mean newline key, to the key of a random other newline, or to that of a random newline "
              "ending a line of the same length; the head still attends) changes newline loss by: "
              + "; ".join(parts) + ". Share of the measured boundary head's effect that runs through its keys at "
              f"newlines: {_num(share['mean'], '.2f', 'n/a')} (mean), {_num(share['resample'], '.2f', 'n/a')} "
              f"(resampled), {_num(share['resample_same_length'], '.2f', 'n/a')} (same line length).",
              _j(k.resample.d_newline), None, [], head=name, key_share=share)
