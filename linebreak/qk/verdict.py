"""The model's verdict: rank the heads, pick the head that carries the verdict, check it on each half of the
documents, and say it in one sentence.

- Heads rank by their twist score (:func:`linebreak.qk.twist.twist_score`), ties broken by the offset line's
  R^2, then by alignment (:func:`rank_key`; the probe route ranks the same way).
- The model passes when any head passes; the verdict is carried by the first passing head in rank order, else
  by the top-ranked head (:func:`model_verdict`).
- Split-half check (:func:`split_half`): that head judged again on the even- and odd-numbered documents, each
  with its own random control. A verdict that differs between halves rests on the sampling noise of the
  per-value means, not on the head.
"""

from __future__ import annotations

import numpy as np

from linebreak.qk import twist
from linebreak.qk.collect import Sums, per_value_means
from linebreak.qk.config import QKConfig
from linebreak.qk.maps import HeadQK, HeadWeights, Tables, head_sides, layer_tables, query_map
from linebreak.qk.result import (
    BestSummary,
    HalfCheck,
    HeadSummary,
    HeadTwist,
    ProbeVerdict,
    SplitHalf,
    TwistSummary,
    Verdict,
    project,
)
from linebreak.results import from_dict


def rank_key(s: TwistSummary | HeadTwist) -> tuple:
    """Sort key: twist score (descending), then the offset line's R^2, then alignment."""
    return (-s.score, -twist.finite(s.qk.r2), -twist.finite(s.qk.alignment))


def rank_heads(scored: list[HeadQK], probes: dict | None, measured: dict) -> list[HeadSummary]:
    """Every head's summary, in rank order (``scored`` in (layer, head) order: ties keep it). ``probes`` and
    ``measured`` are by ``(layer, head)`` (:mod:`linebreak.qk.probe_route`, :mod:`linebreak.qk.attention`)."""
    order = sorted(range(len(scored)), key=lambda j: rank_key(scored[j].twist))
    out = []
    for r, j in enumerate(order):
        s, w = scored[j], scored[j].weights
        m = measured[(w.layer, w.head)]
        out.append(project(HeadSummary, s.twist, layer=w.layer, head=w.head, name=w.name, comparison=s.comparison,
                           rank=r, probes=probes[(w.layer, w.head)] if probes is not None else None,
                           response=m.response, key_side=m.key_side))
    return out


def half_summary(sums: Sums, weights: HeadWeights, i_values, k_values, tables: Tables, cfg: QKConfig) -> HeadTwist:
    """One head's :func:`linebreak.qk.twist.head_summary` from one half's sums, over the full analysis' counts and
    widths that keep at least half the tokens a value needs there (``min_per_value // 2``, at least 2)."""
    min_n = max(2, cfg.min_per_value // 2)
    j = sums.slot(weights.layer)
    iv, Qm = per_value_means(sums.q_sum[j][None, i_values].sum(2), sums.q_n[i_values].sum(1), i_values, min_n)
    kv, Km = per_value_means(sums.k_sum[j][None, k_values], sums.k_n[k_values], k_values, min_n)
    t = layer_tables(tables, weights.layer)
    qmap = query_map(sums.q_sum[j], sums.q_n, iv, Qm[0], t)
    sides = head_sides(qmap, sums, weights, iv, kv, Km[0], t)
    summary, _ = twist.head_summary(Qm[0], Km[0], iv, kv, weights.W_Q, weights.W_K, np.random.default_rng(cfg.seed),
                                    query_map=qmap, b_Q=weights.b_Q, through=(sides.query, sides.key))
    return from_dict(HeadTwist, summary)


def split_half(halves: Sums, weights: HeadWeights, full_passes: bool, i_values, k_values, tables: Tables,
               cfg: QKConfig, n_docs: int) -> SplitHalf:
    """The head judged again on each half of the documents (even and odd index; ``halves`` has the leading
    axis of 2), each with its own random control. ``holds_on_both_halves``: both halves reach the verdict the
    head has on all documents (``full_passes``)."""
    out = []
    for j in range(2):
        s = half_summary(halves.half(j), weights, i_values, k_values, tables, cfg)
        out.append(HalfCheck(max_cos=s.qk.max_cos, slope=s.qk.slope, r2=s.qk.r2, median=s.qk.median,
                             edge_fraction=s.qk.edge_fraction, gain_over_identity=s.gain_over_identity,
                             gain_over_control=s.gain_over_control, passes=s.verdict.passes,
                             fails=[k for k, ok in s.verdict.checks.items() if not ok]))
    return SplitHalf(head=weights.name, n_docs=[(n_docs + 1) // 2, n_docs // 2], halves=out,
                     holds_on_both_halves=all(h.passes == full_passes for h in out))


def lead_head(heads: list[HeadSummary]) -> HeadSummary:
    """The head that carries the verdict: the first passing head in rank order, else the top-ranked head."""
    return next((h for h in heads if h.verdict.passes), heads[0])


def model_verdict(heads: list[HeadSummary], stability: SplitHalf, probes: ProbeVerdict | None) -> Verdict:
    """The model's verdict from its heads in rank order, the split-half check of its lead head and the probe
    route's verdict (None: not run)."""
    best = lead_head(heads)
    passing = [h.name for h in heads if h.verdict.passes]
    return Verdict(
        passes=bool(passing), passing_heads=passing, best_head=best.name, top_ranked_head=heads[0].name,
        best=project(BestSummary, best),
        identity_worse_than_head=twist.finite(best.gain_over_identity) > 0,
        control_shows_no_alignment=not best.control_verdict.passes,
        distinct_offsets_among_passing=sorted({h.qk.median for h in heads if h.verdict.passes}),
        split_half=stability, thresholds=twist.thresholds(),
        statement=statement(best.name, best, passing, stability), probes=probes)


def statement(name: str, best: TwistSummary | HeadTwist, passing: list[str], stability: SplitHalf | None) -> str:
    """The verdict in one sentence: which heads pass (or which checks the best head fails) and its numbers."""
    h = best.qk
    line = (f"best head {name}: max cos {h.max_cos:.2f}, slope {h.slope:.2f}, "
            f"R^2 {h.r2:.2f}, "
            f"median offset {h.median:+.1f}, edge {h.edge_fraction:.2f}, gain over identity "
            f"{best.gain_over_identity:+.2f}, over control {best.gain_over_control:+.2f}, PC1 share of "
            f"the query / key side through the head {best.pc1_share.query:.2f} / "
            f"{best.pc1_share.key:.2f}")
    if stability is not None:
        halves = ", ".join("passes" if h.passes else "fails" for h in stability.halves)
        line += f"; on each half of the documents it {halves}"
    if passing:
        return f"QK twist lines up with the limit in {len(passing)} head(s) ({', '.join(passing)}); {line}"
    failed = [k for k, ok in best.verdict.checks.items() if not ok]
    return f"no head's QK twist lines up with the limit (best fails: {', '.join(failed)}); {line}"
