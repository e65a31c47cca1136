"""Findings of the qk stage: the twist verdict, the probe route, the score split, the key-side test."""

from __future__ import annotations

import math

from linebreak.qk.result import HeadSummary, ProbeVerdict, QKResult
from linebreak.rules.qk import ADDITIVE_MIN_SHARE, KEY_SIDE_MIN_HEADS, MIN_GAIN, MIN_MAX_COS
from linebreak.study.findings.common import _f, _num
from linebreak.study.report import Finding


def undefined_as_none(x):
    """``x``, or None where it is not defined (NaN): what the findings' checks and number formats treat as "not
    measured", as the JSON stores it (a sentence that needs such a number fails, and the report says the
    stage's numbers are undefined)."""
    return None if isinstance(x, float) and math.isnan(x) else x


_j = undefined_as_none


def layers_note(q: QKResult) -> str:
    """A sentence saying which layers' heads were judged when they were not all of them (``--layers``): a
    verdict on a subset speaks for those heads only. Empty when every layer was analysed."""
    if q.layers is None:
        return ""
    names = ", ".join(map(str, q.layers))
    return (f" Heads judged: layer{'s' * (len(q.layers) > 1)} {names} only, of the model's {q.layout.n_layers} "
            f"layers (--layers).")


def qk_findings(q: QKResult, figs: dict) -> list[Finding]:
    v = q.verdict
    b = v.best
    s = "Boundary heads and the QK twist"
    return [
        _f("qk_verdict", s, v.statement + "." + layers_note(q), v.passes, "qk_max_cos",
           [["best head passes the verdict", int(v.passes), "==", 1]], figs.get("qk_matrices"),
           best_head=v.best_head),
        _f("qk_max_cos", s, f"Through the best head's QK ({v.best_head}) count and width align with max "
           f"cosine {_j(b.qk.max_cos):.3f}; with the identity map (raw residual) {_j(b.identity.max_cos):.3f};"
           f" with a random control {_j(b.control.max_cos):.3f}.", _j(b.qk.max_cos), "qk_max_cos",
           [["max_cos", _j(b.qk.max_cos), ">=", MIN_MAX_COS],
            ["gain over control", _j(b.gain_over_control), ">=", MIN_GAIN]],
           figs.get("qk_pca")),
        _f("raw_max_cos", s, f"In the raw residual stream (identity map) the best count-width cosine is "
           f"{_j(b.identity.max_cos):.3f}; averaged over counts, each count's best-matching width has cosine "
           f"{_j(b.identity.alignment):.3f} there against {_j(b.qk.alignment):.3f} through the head's QK: "
           f"the identity {'aligns worse' if v.identity_worse_than_head else 'does not align worse'} than the "
           "head.",
           _j(b.identity.max_cos), "raw_max_cos",
           [["identity worse than head", int(v.identity_worse_than_head), "==", 1]]),
        _key_side_finding(q, s),
        _comparison_finding(q, s, figs),
        _picture_finding(q, s),
    ] + ([_probe_finding(v.probes, s)] if v.probes else [])


def _probe_finding(p: ProbeVerdict, section: str) -> Finding:
    """The same verdict with the paper's sides: logistic probes per count and per width (linebreak.qk)."""
    fits = [f for f in p.fits if _j(f.count_rmse) is not None]
    fit = min(fits, key=lambda f: f.count_rmse) if fits else None
    rmse = (f" The count probes' held-out RMSE is {fit.count_rmse:.1f} characters at their best layer "
            f"(L{fit.layer}).") if fit else ""
    return _f("qk_probe_route", section, f"With logistic value probes as the two sides (the paper's route), "
              f"{p.statement.removeprefix('probe route: ')}.{rmse}", int(p.passes), None,
              [["best head passes the verdict (probe route)", int(p.passes), "==", 1]],
              best_head=p.best_head)


def _comparison_finding(q: QKResult, section: str, figs: dict) -> Finding:
    """How the heads compare count with width: the share of each head's mean attention logit over the
    (count, width) grid that is additive (a count effect plus a width effect) or an interaction (what a twist
    carries, and all the cosine test sees). Reported for the verdict's best head and for the head whose
    measured attention to the newline moves most; descriptive, with no threshold of its own."""
    from linebreak.qk.attention import response_range

    best = q.head(q.verdict.best_head)
    moving = max(q.heads, key=response_range)
    top = max(q.heads, key=lambda h: _j(h.comparison.interaction_share) or 0.0)

    def split(h: HeadSummary):
        c = h.comparison
        return (f"{h.name} {_num(_j(c.count_share), '.1%')} query side (count), "
                f"{_num(_j(c.width_share), '.1%')} key side (width), "
                f"{_num(_j(c.interaction_share), '.1%')} interaction")
    return _f("qk_comparison", section,
              f"How the heads compare count with width (variance of the mean attention logit over the count x "
              f"width grid; a twist is all interaction, subtraction on ramps all additive, a head gated by what the "
              f"query alone knows all query side): best twist head "
              f"{split(best)}; the head whose attention to the newline moves most "
              f"(range {_num(_j(moving.response.range), '.2f')}, peak at "
              f"{moving.response.peak_remaining} characters remaining) {split(moving)}. The largest "
              f"interaction share of any head is {_num(_j(top.comparison.interaction_share), '.1%')} "
              f"({top.name}).", _j(best.comparison.interaction_share), None, [], figs.get("qk_logits"),
              best_head=best.name, most_responsive=moving.name)


def _key_side_finding(q: QKResult, section: str) -> Finding:
    """Does any head compare the count with the key's own line length (attention moves with it when the
    width and count are fixed)? Reported for the best twist head and listed for all heads."""
    best = q.head(q.verdict.best_head)
    ks = best.key_side
    moving = [h.name for h in q.heads if h.key_side.moves]

    def n(x, spec):
        return _num(_j(x), spec, "n/a")
    return _f("qk_key_side", section,
              f"Key-side comparison test: with width and count held fixed, the earlier line's length explains "
              f"{n(ks.excess, '+.3f')} of {best.name}'s attention variance beyond shuffled lengths "
              f"(p = {n(ks.p_value, '.3f')}, correlation {n(ks.corr, '+.2f')}). Heads whose attention "
              f"moves with the key: {', '.join(moving) if moving else 'none'}. Queries were read "
              f"{q.query_frame}.",
              _j(ks.excess), None, [["heads moving with the key", len(moving), ">=", KEY_SIDE_MIN_HEADS]],
              moving=moving)


def _picture_finding(q: QKResult, section: str) -> Finding:
    """Which of the two published pictures of the count-limit comparison the model matches: Gurnee et al.'s twist
    (a head passes the verdict) or Hindupur et al.'s addition (no head twists, and the head whose attention to
    the newline moves most is mostly additive: query side plus key side carry more than
    :data:`~linebreak.rules.qk.ADDITIVE_MIN_SHARE` of its mean-logit variance)."""
    from linebreak.qk.attention import response_range

    moving = max(q.heads, key=response_range)
    share = _j(moving.comparison.interaction_share)
    additive = None if share is None else 1.0 - share
    twist = bool(q.verdict.passes)
    if twist:
        picture = f"Gurnee et al.'s: {q.verdict.best_head} twists count onto width"
    elif additive is not None and additive > ADDITIVE_MIN_SHARE:
        picture = (f"Hindupur et al.'s: no head twists, and the head whose attention to the newline moves most "
                   f"({moving.name}) compares by addition ({additive:.0%} of its mean-logit variance is a "
                   f"query-side plus a key-side term)")
    else:
        picture = (f"neither clearly: no head twists, and {moving.name}, whose attention moves most, is "
                   f"{_num(additive, '.0%')} additive")
    return _f("qk_picture", section, f"Of the two published pictures of how a model compares its count with the "
              f"line's limit, this model matches {picture}.", additive, "additive_comparison",
              [["best head passes the verdict", int(twist), "==", 0],
               ["additive share of the most responsive head", additive, ">", ADDITIVE_MIN_SHARE]],
              most_responsive=moving.name, twist=twist)
