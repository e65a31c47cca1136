"""``linebreak qk --keys pad|cell_start``: the twist test with an earlier table row's column starts as the keys.

A table's pad must bring the count to the next column start, which only the rows above show (issue 19). A head
that does this compares the count ``i`` at its query with the column start ``k`` of a key on an earlier row, and
the comparison must *peak* at ``k = next column start``: the twist the paper describes, with widths replaced by
column starts. :func:`column_analysis` asks it of every head with the same verdict, thresholds and split-half
check as the newline test (:mod:`linebreak.qk.twist`, :mod:`linebreak.qk.verdict`), on the sides
:mod:`linebreak.qk.keyclass` collects, and adds what the attention measurably does (:func:`attention_stats`):

- ``match_share``: the attention a pad decision puts on the earlier rows' tokens that start its *next* column
  (``key_mass``: on every earlier row's cell start);
- ``count_only_share`` / ``ordinal_only_share``: where an empty cell makes the two readings name different keys
  (``n_disagree`` pad decisions; none without empty cells), the attention on the keys that reach the next
  column start but are another cell of their row, against the keys that are the same cell (the j-th cell of
  their row, ``cell_index``) but reach another column. A count match puts it on the first; a head that counts
  cells on the second;
- ``count_offset_eta2`` / ``token_offset_eta2``: how much of each pair's logit (less its query's mean) the key's
  count offset ``k - i`` explains, against its token offset ``t - s``. A count match is read in characters;
- ``measured_interaction_share``: the interaction share of the head's *real* mean logit over the observed
  (count, column start) cells (:func:`additive_fit`), beside ``comparison``, the split of the logit its mean
  sides predict;
- the key-side test (:func:`linebreak.qk.attention.key_side_test`) on the previous row: with the query's count,
  its column, the key's column index and the token offset held fixed, does the attention move with where that
  column starts? A head that reads "the j-th cell of the row above" need not; a count match must. It is
  observational: across documents the query's own layout moves with the key's, so the causal stage's key
  ablations (:mod:`linebreak.causal.columns`) say whether the key is what the head reads;
- the key-shift test (:mod:`linebreak.qk.key_shift`): the document edited so that only the previous row's
  matching column moves, by up to half a column gap. Does the head's logit on that key peak where the key
  really is? This is the interventional test the issue asks for. The observational one cannot see a head whose
  attention on the match saturates;
- the key track (:mod:`linebreak.qk.key_track`): the same key moved over its row's whole pad range, read as a
  curve in the head's key space behind the ringing gate, beside the random-init control's track of the same
  edits. It is where a per-document part of the key, which the centroids average away, could ring.

The key ablations with same-column resampling are the causal stage's (:mod:`linebreak.causal.columns`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from linebreak.hooks import arch
from linebreak.io import UserError
from linebreak.qk import keyclass
from linebreak.qk.attention import key_side_test
from linebreak.qk.collect import Means, check_model, select_docs
from linebreak.qk.config import QKConfig
from linebreak.qk.key_shift import KeyShift, key_shift_tests
from linebreak.qk.key_track import KeyTrack, key_tracks
from linebreak.qk.maps import score_heads
from linebreak.qk.result import Comparison, HeadTwist, KeySide, TopHead, Verdict, project
from linebreak.qk.top_heads import top_head
from linebreak.qk.verdict import lead_head, model_verdict, rank_key, split_half
from linebreak.results import OMIT, Result


@dataclass(kw_only=True)
class ColumnAttention:
    """What one head's attention does on the (pad decision, earlier cell start) pairs (module doc)."""
    match_share: float
    key_mass: float
    n_disagree: int
    count_only_share: float
    ordinal_only_share: float
    count_offset_eta2: float
    token_offset_eta2: float
    measured_interaction_share: float


@dataclass(kw_only=True)
class ColumnHead(HeadTwist):
    layer: int
    head: int
    name: str
    rank: int
    comparison: Comparison
    attention: ColumnAttention
    key_side: KeySide
    key_shift: KeyShift | None = field(default=None, metadata=OMIT)  # None: not run (key_shift_pairs 0, older file)
    key_track: KeyTrack | None = field(default=None, metadata=OMIT)  # None: not run (no control, 0 sites, older)


@dataclass(kw_only=True)
class SideGeometry:
    """One side of a head, as the head sees it (query per count, key per column start), over the longest run of
    consecutive values: its PC1 and top-6 shares and its ringing behind the gate
    (:func:`linebreak.probe.ringing.gated_ringing`: sign changes, ripples, and the turns of its top-2-PC angle;
    an arc past three quarters of a turn changes sign twice with one ripple). ``ripples`` and ``turns`` are None
    in a record written before they were measured, and ``turns`` also when the gate is closed."""
    values: np.ndarray
    pc1: float
    top6: float
    smoothness: float
    gate_open: bool
    gate_reason: str | None
    sign_changes: int
    ripples: int | None = None
    turns: float | None = None


@dataclass(kw_only=True)
class HeadGeometry:
    """The count where a detailed head reads it: its query side and its key side (issue 19, item 7)."""
    name: str
    query: SideGeometry
    key: SideGeometry


def side_geometry(X: np.ndarray, values: np.ndarray) -> SideGeometry:
    """:class:`SideGeometry` of the rows ``X [V, d]`` of ``values`` (increasing; the longest consecutive run)."""
    from linebreak.probe import manifold
    from linebreak.probe.ringing import gated_ringing

    _, _, keep = manifold.kept_values(values, min_per_value=1, min_values=3)
    X, v = np.asarray(X)[keep], np.asarray(values)[keep]
    p, g = manifold.pca_spectrum(X), gated_ringing(X, v)
    return SideGeometry(values=v, pc1=float(p["ratio"][0]), top6=p["top6"], smoothness=g["smoothness"],
                        gate_open=g["gate_open"], gate_reason=g["reason"], sign_changes=int(g["sign_changes"]),
                        ripples=int(g["ripples"]), turns=g["turns"])


@dataclass(kw_only=True)
class ColumnQKResult(Result):
    """The twist test over a table's column starts. ``heads`` in rank order; ``column_head``: the head with the
    largest ``match_share`` (the measured column head, beside the verdict's head); ``top``: the detailed views of
    both; ``geometry``: their two sides' spectra and ringing."""

    FORMAT = "linebreak-qk-columns/1"

    config: QKConfig
    layout: arch.Layout
    n_docs: int
    n_queries: int
    n_keys: int
    n_pairs: int
    query_frame: str
    i_values: np.ndarray
    k_values: np.ndarray
    heads: list[ColumnHead]
    column_head: str
    top: list[TopHead]
    geometry: list[HeadGeometry]
    verdict: Verdict
    model: str | None = field(default=None, metadata={"omit_if_none": True})
    corpus: str | None = field(default=None, metadata={"omit_if_none": True})

    def head(self, name: str) -> ColumnHead:
        return next(h for h in self.heads if h.name == name)


def class_means(sums, q_tokens: np.ndarray, cfg: QKConfig) -> Means:
    """Per-count query means (over pairs) for the counts with ``cfg.min_per_value`` query *tokens*, and
    per-column-start key means for the starts with that many key tokens; a :class:`UserError` when too few."""
    pairs_per_count = sums.q_n.sum(1)
    keep_i = (q_tokens[: len(pairs_per_count)] >= cfg.min_per_value) & (pairs_per_count > 0)
    keep_k = sums.k_n >= cfg.min_per_value
    if keep_i.sum() < cfg.min_values or keep_k.sum() < cfg.min_values:
        raise UserError(f"too few values: {int(keep_i.sum())} counts and {int(keep_k.sum())} column starts have "
                        f">= {cfg.min_per_value} tokens (need {cfg.min_values}); use more documents or a lower "
                        f"--min-per-value")
    Q = sums.q_sum.sum(2)[:, keep_i] / pairs_per_count[keep_i][None, :, None]
    K = sums.k_sum[:, keep_k] / sums.k_n[keep_k][None, :, None]
    return Means(np.flatnonzero(keep_i), Q, np.flatnonzero(keep_k), K, sums.layers)


def additive_fit(S: np.ndarray, n: np.ndarray, min_n: int) -> float:
    """Share of the variance of a mean-logit grid ``S [I, K]`` (``n``: pairs per cell) that a count effect plus a
    key effect leaves: the interaction share, fitted by least squares weighted by ``n`` over the cells with at
    least ``min_n`` pairs (two-way ANOVA when every cell has the same count). A cell mean of a few pairs carries
    their word-to-word noise, which reads as interaction: hence the floor and the weights. nan with < 3 cells."""
    ii, kk = np.nonzero(n >= min_n)
    if len(ii) < 3:
        return float("nan")
    y, w = S[ii, kk], np.sqrt(n[ii, kk])
    X = np.zeros((len(y), S.shape[0] + S.shape[1]))
    X[np.arange(len(y)), ii] = 1.0
    X[np.arange(len(y)), S.shape[0] + kk] = 1.0
    resid = y - X @ np.linalg.lstsq(X * w[:, None], y * w, rcond=None)[0]
    mean = float(np.average(y, weights=w**2))
    total = float((w**2 * (y - mean) ** 2).sum())
    return float((w**2 * resid**2).sum() / total) if total > 0 else float("nan")


def eta2(y: np.ndarray, groups: np.ndarray) -> float:
    """Share of the variance of ``y`` that its group means explain (categorical R^2)."""
    _, g = np.unique(groups, return_inverse=True)
    means = np.bincount(g, y) / np.bincount(g)
    tot = float(((y - y.mean()) ** 2).sum())
    return float(((means[g] - y.mean()) ** 2).sum() / tot) if tot > 0 else float("nan")


def query_index(P: keyclass.Pairs) -> np.ndarray:
    """Each pair's query, numbered 0.. in pair order of first appearance (pairs come query by query)."""
    return np.unique(P.b * 100003 + P.t, return_inverse=True)[1]


def attention_stats(logit: np.ndarray, prob: np.ndarray, P: keyclass.Pairs, i_values, k_values,
                    min_n: int) -> ColumnAttention:
    """One head's :class:`ColumnAttention` from its per-pair ``logit`` and ``prob`` (``min_n``: pairs a cell of
    the mean-logit grid needs, :func:`additive_fit`). The attention shares are over every earlier row; the
    logit statistics over the previous row's keys, each less its query's mean there, since rows further up
    differ from it by their distance before anything else."""
    q = query_index(P)
    match, same_cell = P.k == P.target, P.k_cell == P.cell_target
    has_match = np.bincount(q, match) > 0
    only_count, only_cell = match & ~same_cell, same_cell & ~match
    disagree = (np.bincount(q, only_count) > 0) & (np.bincount(q, only_cell) > 0)
    near = P.rows == 1
    Pn = P.take(near)
    qn = query_index(Pn)
    y = logit[near]
    centred = y - (np.bincount(qn, y) / np.bincount(qn))[qn]
    grid = np.isin(Pn.i, i_values) & np.isin(Pn.k, k_values)
    ii, kk = np.searchsorted(i_values, Pn.i[grid]), np.searchsorted(k_values, Pn.k[grid])
    S, n = np.zeros((len(i_values), len(k_values))), np.zeros((len(i_values), len(k_values)))
    np.add.at(S, (ii, kk), y[grid])
    np.add.at(n, (ii, kk), 1)

    def share(keys):  # mean over the disagreeing pad decisions
        return float(np.bincount(q, prob * keys)[disagree].mean()) if disagree.any() else float("nan")

    return ColumnAttention(match_share=float(np.bincount(q, prob * match)[has_match].mean()),
                           key_mass=float(np.bincount(q, prob).mean()), n_disagree=int(disagree.sum()),
                           count_only_share=share(only_count), ordinal_only_share=share(only_cell),
                           count_offset_eta2=eta2(centred, Pn.k - Pn.i), token_offset_eta2=eta2(centred, Pn.t - Pn.s),
                           measured_interaction_share=additive_fit(S / np.maximum(n, 1), n, min_n))


def previous_row_key_side(prob: np.ndarray, P: keyclass.Pairs, rng: np.random.Generator) -> KeySide:
    """The key-side test on the previous row's keys: within groups of (query count, query column, key column
    index, token offset), does attention move with the key's column start? (:func:`key_side_test`'s ``width``
    is the group of the two column indices and the offset, its ``count`` the query's count, its ``prev_len`` the
    column start.) The token offset is held fixed because it moves with the column start (a key further right
    on the row above sits nearer the query), and a rotary head can follow it without reading the key."""
    m = P.rows == 1
    group = (P.q_col[m] * 1000 + P.k_col[m]) * 1000 + np.minimum(P.offset[m], 999)
    return key_side_test(prob[m], group, P.i[m], P.k[m], rng)


def column_analysis(model, corpus, cfg: QKConfig | None = None, tokenizer=None, control=None) -> ColumnQKResult:
    """The twist test of every head of ``model`` (or of the layers ``cfg.layers``) with the earlier rows' column
    starts as keys, on a table corpus (module doc). ``control``: the model's random-init control (same
    architecture, untrained), which the key tracks are read beside; without it they are not run."""
    cfg = cfg or QKConfig(keys="cell_start")
    lay = check_model(model, tokenizer, corpus)
    rotary = arch.is_rotary(model)
    ids, lab = select_docs(corpus, cfg.split, cfg.n_docs)
    data = keyclass.collect(model, lay, ids, lab, cfg, rotary)  # refuses labels without tables
    sums, P, tables = data.halves.total(), data.pairs, data.tables
    means = class_means(sums, data.q_tokens, cfg)
    rng = np.random.default_rng(cfg.seed)
    scored = score_heads(model, lay, sums, means, tables, rng)
    order = sorted(range(len(scored)), key=lambda j: rank_key(scored[j].twist))
    shifts = (key_shift_tests(model, lay, ids, lab, P, sums.layers, tables, corpus.table, cfg.key_shift_pairs,
                              cfg.batch_size, np.random.default_rng([cfg.seed, 1]))
              if cfg.key_shift_pairs and corpus.table else {})
    tracks = (key_tracks(model, control, lay, ids, lab, P, sums.layers, tables, corpus.table, cfg.key_track_sites,
                         cfg.batch_size, np.random.default_rng([cfg.seed, 3]))
              if cfg.key_track_sites and corpus.table and control is not None else {})
    heads = []
    for r, j in enumerate(order):
        s, w = scored[j], scored[j].weights
        logit, prob = data.scores.logit[w.layer][:, w.head], data.scores.prob[w.layer][:, w.head]
        heads.append(project(ColumnHead, s.twist, layer=w.layer, head=w.head, name=w.name, rank=r,
                             comparison=s.comparison,
                             attention=attention_stats(logit, prob, P, means.i_values, means.k_values,
                                                       cfg.min_per_value),
                             key_side=previous_row_key_side(prob, P, rng),
                             key_shift=shifts.get((w.layer, w.head)), key_track=tracks.get((w.layer, w.head))))
    lead = lead_head(heads)
    by_position = {(s.weights.layer, s.weights.head): s for s in scored}
    stability = split_half(data.halves, by_position[(lead.layer, lead.head)].weights, lead.verdict.passes,
                           means.i_values, means.k_values, tables, cfg, len(ids))
    column = max(heads, key=lambda h: h.attention.match_share)
    shown = [lead] + ([column] if column.name != lead.name else [])
    frame = ("queries rotated to each previous-row key by their token offset and averaged over the pairs"
             if rotary else "weights (no positional rotation)")
    return ColumnQKResult(
        config=cfg, layout=lay, n_docs=len(ids), n_queries=int(keyclass.query_tokens(lab).sum()),
        n_keys=int((keyclass.key_values(lab, cfg.keys) >= 0).sum()), n_pairs=len(P.b), query_frame=frame,
        i_values=means.i_values, k_values=means.k_values, heads=heads, column_head=column.name,
        top=[top_head(by_position[(h.layer, h.head)], means) for h in shown],
        geometry=[HeadGeometry(name=h.name, query=side_geometry(by_position[(h.layer, h.head)].sides.query,
                                                                means.i_values),
                               key=side_geometry(by_position[(h.layer, h.head)].sides.key, means.k_values))
                  for h in shown],
        verdict=model_verdict(heads, stability, None))
