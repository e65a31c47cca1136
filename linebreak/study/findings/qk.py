"""Findings of the qk stage: the twist verdict, the probe route, the score split, the key-side test."""

from __future__ import annotations

from linebreak.study.findings.common import _f, _num
from linebreak.study.report import Finding


def qk_findings(q: dict, figs: dict) -> list[Finding]:
    v = q["verdict"]
    b = v["best"]
    s = "Boundary heads and the QK twist"
    return [
        _f("qk_verdict", s, v["statement"] + ".", v["passes"], "qk_max_cos",
           [["best head passes the verdict", int(v["passes"]), "==", 1]], figs.get("qk_matrices"),
           best_head=v["best_head"]),
        _f("qk_max_cos", s, f"Through the best head's QK ({v['best_head']}) count and width align with max "
           f"cosine {b['qk']['max_cos']:.3f}; with the identity map (raw residual) {b['identity']['max_cos']:.3f};"
           f" with a random control {b['control']['max_cos']:.3f}.", b["qk"]["max_cos"], "qk_max_cos",
           [["max_cos", b["qk"]["max_cos"], ">=", 0.8], ["gain over control", b["gain_over_control"], ">=", 0.1]],
           figs.get("qk_pca")),
        _f("raw_max_cos", s, f"In the raw residual stream (identity map) the best count-width cosine is "
           f"{b['identity']['max_cos']:.3f}; averaged over counts, each count's best-matching width has cosine "
           f"{b['identity']['alignment']:.3f} there against {b['qk']['alignment']:.3f} through the head's QK: "
           f"the identity {'aligns worse' if v['identity_worse_than_head'] else 'does not align worse'} than the "
           "head.",
           b["identity"]["max_cos"], "raw_max_cos",
           [["identity worse than head", int(v["identity_worse_than_head"]), "==", 1]]),
        _key_side_finding(q, s),
    ] + ([_comparison_finding(q, s, figs)] if "comparison" in q["heads"][0] else []) + (
        [_probe_finding(v["probes"], s)] if v.get("probes") else [])


def _probe_finding(p: dict, section: str) -> Finding:
    """The same verdict with the paper's sides: logistic probes per count and per width (linebreak.qk)."""
    fits = [f for f in p["fits"] if f["count_rmse"] is not None]  # NaN is stored as null in JSON
    fit = min(fits, key=lambda f: f["count_rmse"]) if fits else None
    rmse = (f" The count probes' held-out RMSE is {fit['count_rmse']:.1f} characters at their best layer "
            f"(L{fit['layer']}).") if fit else ""
    return _f("qk_probe_route", section, f"With logistic value probes as the two sides (the paper's route), "
              f"{p['statement'].removeprefix('probe route: ')}.{rmse}", int(p["passes"]), None,
              [["best head passes the verdict (probe route)", int(p["passes"]), "==", 1]],
              best_head=p["best_head"])


def _comparison_finding(q: dict, section: str, figs: dict) -> Finding:
    """How the heads compare count with width: the share of each head's mean attention logit over the
    (count, width) grid that is additive (a count effect plus a width effect) or an interaction (what a twist
    carries, and all the cosine test sees). Reported for the verdict's best head and for the head whose
    measured attention to the newline moves most; descriptive, with no threshold of its own."""
    from linebreak.qk.analysis import response_range

    best = next(h for h in q["heads"] if h["name"] == q["verdict"]["best_head"])
    moving = max(q["heads"], key=response_range)
    top = max(q["heads"], key=lambda h: h["comparison"]["interaction_share"] or 0.0)

    def split(h):
        c = h["comparison"]
        return (f"{h['name']} {_num(c['count_share'], '.1%')} query side (count), {_num(c['width_share'], '.1%')} "
                f"key side (width), {_num(c['interaction_share'], '.1%')} interaction")
    return _f("qk_comparison", section,
              f"How the heads compare count with width (variance of the mean attention logit over the count x "
              f"width grid; a twist is all interaction, subtraction on ramps all additive, a head gated by what the "
              f"query alone knows all query side): best twist head "
              f"{split(best)}; the head whose attention to the newline moves most "
              f"(range {_num(moving['response']['range'], '.2f')}, peak at "
              f"{moving['response']['peak_remaining']} characters remaining) {split(moving)}. The largest "
              f"interaction share of any head is {_num(top['comparison']['interaction_share'], '.1%')} "
              f"({top['name']}).", best["comparison"]["interaction_share"], None, [], figs.get("qk_logits"),
              best_head=best["name"], most_responsive=moving["name"])


def _key_side_finding(q: dict, section: str) -> Finding:
    """Does any head compare the count with the key's own line length (attention moves with it when the
    width and count are fixed)? Reported for the best twist head and listed for all heads."""
    best = next(h for h in q["heads"] if h["name"] == q["verdict"]["best_head"])
    ks = best.get("key_side") or {}
    moving = [h["name"] for h in q["heads"] if (h.get("key_side") or {}).get("moves")]

    def n(x, spec):
        return _num(x, spec, "n/a")
    return _f("qk_key_side", section,
              f"Key-side comparison test: with width and count held fixed, the earlier line's length explains "
              f"{n(ks.get('excess'), '+.3f')} of {best['name']}'s attention variance beyond shuffled lengths "
              f"(p = {n(ks.get('p_value'), '.3f')}, correlation {n(ks.get('corr'), '+.2f')}). Heads whose attention "
              f"moves with the key: {', '.join(moving) if moving else 'none'}. Queries were read "
              f"{q.get('query_frame', 'from the weights')}.",
              ks.get("excess"), None, [["heads moving with the key", len(moving), ">=", 1]], moving=moving)
