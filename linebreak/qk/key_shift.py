"""The key-shift test of a table head: move one column of the row above, hold everything else, and read the logit.

Issue 19 asks whether a matching head's attention "moves with the earlier row's column" when *only* that row's
column position changes. The observational key-side test (:func:`linebreak.qk.columns.previous_row_key_side`)
cannot answer it for the heads that match best. It groups pairs by (query count, query column, key column,
token offset) and asks whether attention moves with the key's column start inside a group. But without empty
cells, whether a key marks the query's next column start is fixed by the two column indices. So inside a
group every key matches or none does, and a head whose attention on the match saturates has nothing left to
move.

This test edits the document instead. Take a pad decision on row ``r >= 1`` and its key on row ``r - 1`` that
marks the query's next column start (``pad`` keys: the pad that ends there; ``cell_start``: the word that
starts there). The edit lengthens the last pad before the key on its row by ``δ`` spaces and shortens the first
pad after it by ``δ``. That swaps one pad token for another, so no token moves: every token offset, the rotary
angles and the key token itself stay what they were. Everything between the two pads, the key included, sits
``δ`` characters further right, and the rest of the document is unchanged. The head's logit is then taken
between the *unedited* document's query and the edited key (:func:`linebreak.qk.keyclass.pair_logits`).
Only the key side has changed.

Per head, for ``d = 1 .. D``, where ``D`` is half the corpus's narrowest column gap (a key moved that far is
halfway to where a neighbouring column could start):

- ``peak[d]``: the mean over pairs of ``logit(0) - (logit(+d) + logit(-d)) / 2``. It is positive when the logit
  peaks at the key's real column, as a count match must, and zero for a ramp: an additive comparison's change
  is odd in ``δ`` and cancels;
- ``slope[d]``: the mean of ``(logit(+d) - logit(-d)) / 2d``, in nats per character: the ramp;
- ``pad_corr``: at ``D``, the correlation over pairs of ``logit(+D) - logit(-D)`` with the pair's pad length
  (next column start less count). A query that knows only its count peaks at ``count + ε``. A next column
  start further right than that then gains from a key moved left, which gives a negative correlation. A
  query that carries the next column start itself peaks there whatever the pad, which gives none. This tests
  the hypothesis docs/research/tables.md left open;
- ``peak_first_row``: ``peak[D]`` over the pairs whose key is on the first row (``n_first_row`` of them). A key
  on a later row can also peak because it checks its own alignment with the rows above it (a key moved off
  its column no longer lines up with them), which is not a comparison with the query. A first-row key has no
  row above, so a peak there is the query's comparison;
- ``key_angle[d]``: the mean angle (radians) through which the head's own key turns when the key moves ``d``
  characters (between ``hook_k``, or ``hook_k_normed`` on a q/k-norm model, before and after). Divided by
  ``d``, it is how fast one document's key turns per character of its column, to set beside the turns of
  the key side's centroids (``geometry``): a key that turns much faster than its centroids carries a
  per-document part that the centroids average away;
- ``peaks``: ``peak[D] >= KEY_SHIFT_MIN_PEAK`` (:mod:`linebreak.rules.qk`, with the reason), with the lower
  bound of its 95 % bootstrap interval (documents resampled) above zero.

A pair is used at ``d`` when both pads stay pad tokens at ``±d``, that is between ``MIN_PAD`` and the corpus's
``max_pad``. At most ``QKConfig.key_shift_pairs`` pairs are used per ``d``, drawn as a seeded sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linebreak.corpus.tokenizer import MIN_PAD
from linebreak.hooks import arch
from linebreak.hooks.points import hook_name
from linebreak.hooks.run import as_tensor, batches, run_with_hooks
from linebreak.qk.collect import numpy64
from linebreak.qk.keyclass import Pairs, pair_logits
from linebreak.rules.qk import KEY_SHIFT_BOOTSTRAP, KEY_SHIFT_MIN_PEAK


@dataclass(kw_only=True)
class KeyShift:
    """One head's key-shift test (module doc): per shift ``d`` in ``shifts``, the pairs ``n`` it was measured on,
    ``peak`` and ``slope`` (nats, nats per character) and ``key_angle`` (radians); at the largest shift, the
    bootstrap interval ``peak_ci`` of ``peak``, ``pad_corr``, ``peak_first_row`` over the ``n_first_row`` pairs
    whose key is on row 0 (nan without one), and the verdict ``peaks``."""
    shifts: list[int]
    n: list[int]
    peak: list[float]
    slope: list[float]
    key_angle: list[float]
    peak_ci: list[float]
    pad_corr: float
    peak_first_row: float
    n_first_row: int
    peaks: bool


@dataclass
class Sites:
    """The shifted pairs: document ``b``, query ``t``, key ``s``, the pads edited ``before`` / ``after`` the key
    on its row (positions) with their lengths ``len_before`` / ``len_after``, the pair's pad length ``pad``
    (next column start less the query's count) and the key's row ``key_row``."""
    b: np.ndarray
    t: np.ndarray
    s: np.ndarray
    before: np.ndarray
    after: np.ndarray
    len_before: np.ndarray
    len_after: np.ndarray
    pad: np.ndarray
    key_row: np.ndarray

    def take(self, m) -> Sites:
        return Sites(*(getattr(self, f)[m] for f in self.__dataclass_fields__))


def sites(lab: dict, P: Pairs) -> Sites:
    """The pairs whose key is on the row just above and marks the query's next column start, with the pads around
    the key on its row (pairs whose key has no pad before or after it on its row are left out)."""
    m = (P.rows == 1) & (P.k == P.target)
    b, t, s = P.b[m], P.t[m], P.s[m]
    pad, line, tok_len = lab["is_pad"].astype(bool), lab["line_index"], lab["token_len"]
    T = pad.shape[1]
    pos = np.arange(T)
    before, after = np.full(len(b), -1), np.full(len(b), -1)
    for j in range(len(b)):
        row = pad[b[j]] & (line[b[j]] == line[b[j], s[j]])
        left, right = pos[row & (pos < s[j])], pos[row & (pos > s[j])]
        before[j] = left[-1] if len(left) else -1
        after[j] = right[0] if len(right) else -1
    ok = (before >= 0) & (after >= 0)
    b, t, s, before, after = b[ok], t[ok], s[ok], before[ok], after[ok]
    return Sites(b, t, s, before, after, tok_len[b, before], tok_len[b, after], P.target[m][ok] - P.i[m][ok],
                 line[b, s])


def feasible(S: Sites, d: int, max_pad: int) -> np.ndarray:
    """The sites whose two pads stay pads when moved by ``±d``."""
    def fits(n):
        return (n - d >= MIN_PAD) & (n + d <= max_pad)
    return fits(S.len_before) & fits(S.len_after)


def edited(ids: np.ndarray, S: Sites, delta: np.ndarray, pad_id: dict[int, int]) -> np.ndarray:
    """One document per site: ``ids[b]`` with the pad before the key ``delta`` spaces longer and the pad after it
    ``delta`` shorter."""
    out = ids[S.b].copy()
    rows = np.arange(len(S.b))
    out[rows, S.before] = [pad_id[int(n)] for n in S.len_before + delta]
    out[rows, S.after] = [pad_id[int(n)] for n in S.len_after - delta]
    return out


def capture(model, docs: np.ndarray, reads: dict[str, np.ndarray], layers,
            batch_size: int) -> dict[str, dict[int, np.ndarray]]:
    """Per site of ``reads`` (``q``/``k`` or their normed forms), every layer's activation at that site's
    ``positions[j]`` of document ``docs[j]``: ``{site: {layer: [rows, heads, d_head]}}``, float64, from one pass.
    Each batch runs only up to its last position read (attention is causal, so what comes later cannot change
    it)."""
    out: dict[str, dict[int, list]] = {site: {L: [] for L in layers} for site in reads}
    batch: dict = {}

    def keep(site, L):
        def fn(x, name):
            pos = batch[site]
            out[site][L].append(numpy64(x)[np.arange(len(pos)), pos])
        return fn

    fwd = [(hook_name(site, L), keep(site, L)) for site in reads for L in layers]
    for s, e in batches(len(docs), batch_size):
        batch.update({site: positions[s:e] for site, positions in reads.items()})
        last = max(int(positions[s:e].max()) for positions in reads.values())
        run_with_hooks(model, as_tensor(docs[s:e, : last + 1]), fwd, use_cache=False)
    return {site: {L: np.concatenate(v) for L, v in by_layer.items()} for site, by_layer in out.items()}


def bootstrap_ci(values: np.ndarray, docs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[2, heads]``: the 2.5 % and 97.5 % points of the mean of ``values [pairs, heads]`` over
    ``KEY_SHIFT_BOOTSTRAP`` resamples of the documents ``docs [pairs]`` (with replacement)."""
    u, inv = np.unique(docs, return_inverse=True)
    sums = np.zeros((len(u), values.shape[1]))
    np.add.at(sums, inv, values)
    n = np.bincount(inv, minlength=len(u)).astype(float)
    draw = rng.integers(0, len(u), size=(KEY_SHIFT_BOOTSTRAP, len(u)))
    means = sums[draw].sum(1) / n[draw].sum(1)[:, None]
    return np.quantile(means, [0.025, 0.975], axis=0)


def pad_ids(table_meta: dict) -> dict[int, int]:
    """The token id of the pad of each length ``MIN_PAD .. max_pad`` of a table corpus (its ``table`` record)."""
    first = int(table_meta["first_pad_id"])
    return {n: first + n - MIN_PAD for n in range(MIN_PAD, int(table_meta["max_pad"]) + 1)}


def largest_shift(table_meta: dict) -> int:
    """``D``: half the corpus's narrowest column gap, where a moved key is halfway to a neighbouring column."""
    return max(1, min(table_meta["col_gap"]) // 2)


def key_shift_tests(model, lay, ids: np.ndarray, lab: dict, P: Pairs, layers, tables: dict | None, table_meta: dict,
                    n_pairs: int, batch_size: int, rng: np.random.Generator) -> dict[tuple[int, int], KeyShift | None]:
    """:class:`KeyShift` of every head of ``layers`` (module doc); None for every head when no site fits a
    shift. ``tables`` are the qk pass's rotary tables by layer (None without rotary), ``table_meta`` the corpus's
    ``table`` record (its pad ids and column gaps)."""
    max_pad, pad_id, D = int(table_meta["max_pad"]), pad_ids(table_meta), largest_shift(table_meta)
    S = sites(lab, P)
    chosen = []
    for d in range(1, D + 1):
        j = np.flatnonzero(feasible(S, d, max_pad))
        chosen.append(np.sort(rng.choice(j, size=min(n_pairs, len(j)), replace=False)) if len(j) else j)
    heads = [(L, h) for L in layers for h in range(lay.n_heads)]
    if not len(chosen[-1]):
        return {hd: None for hd in heads}
    normed = arch.has_qk_norm(model)
    q_site, k_site = ("q_normed", "k_normed") if normed else ("q", "k")
    used = np.unique(np.concatenate(chosen))
    U = S.take(used)
    clean = capture(model, ids[U.b], {q_site: U.t, k_site: U.s}, layers, batch_size)
    q0, k0 = clean[q_site], clean[k_site]
    rep = lay.n_heads // lay.n_kv_heads

    def logits(rows, k):  # [rows, layers * heads] for rows of U and their keys k {layer: [rows, kv, dh]}
        return np.concatenate([pair_logits(q0[L][rows], k[L], U.t[rows] - U.s[rows], rep,
                                           None if tables is None else tables[L], arch.score_divisor(model, L))
                               for L in layers], axis=1)

    def angle(k, rows):  # [rows, layers * heads]: the angle each head's key turns through, from k0 to k
        return np.concatenate([np.repeat(key_angle(k0[L][rows], k[L]), rep, axis=1) for L in layers], axis=1)

    base, plus, minus, turned = [], [], [], []
    for d, c in zip(range(1, D + 1), chosen):
        rows = np.searchsorted(used, c)
        Sd = U.take(rows)
        base.append(logits(rows, {L: k0[L][rows] for L in layers}))
        both = []
        for moved, sign in ((plus, 1), (minus, -1)):
            docs = edited(ids, Sd, np.full(len(c), sign * d), pad_id)
            k = capture(model, docs, {k_site: Sd.s}, layers, batch_size)[k_site]
            moved.append(logits(rows, k))
            both.append(angle(k, rows))
        turned.append((both[0] + both[1]) / 2)
    return dict(zip(heads, summarise(base, plus, minus, turned, Sd.b, Sd.pad, Sd.key_row == 0, rng)))


def key_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[rows, kv_heads]``: the angle (radians) between each row's key vectors ``a`` and ``b`` ``[rows, kv, dh]``,
    as ``2 atan2(|u - v|, |u + v|)`` of the unit vectors (exact near 0, where ``arccos`` of a rounded cosine
    is not: equal keys give exactly 0)."""
    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-300)
    u, v = unit(a), unit(b)
    return 2 * np.arctan2(np.linalg.norm(u - v, axis=-1), np.linalg.norm(u + v, axis=-1))


def summarise(base: list[np.ndarray], plus: list[np.ndarray], minus: list[np.ndarray], turned: list[np.ndarray],
              docs: np.ndarray, pad: np.ndarray, first_row: np.ndarray, rng: np.random.Generator) -> list[KeyShift]:
    """One :class:`KeyShift` per head from the logits ``[pairs, heads]`` of the unedited keys (``base``) and of the
    keys moved ``+d`` / ``-d`` (``plus``, ``minus``), and the angles their keys turned through (``turned``, the
    mean of the two directions), one array per ``d = 1, 2, ...``; ``docs``, ``pad`` and ``first_row`` (the key
    is on row 0) describe the largest shift's pairs (module doc)."""
    peak = [b - (p + m) / 2 for b, p, m in zip(base, plus, minus)]
    slope = [(p - m) / (2 * d) for d, (p, m) in enumerate(zip(plus, minus), 1)]
    odd = plus[-1] - minus[-1]
    ci = bootstrap_ci(peak[-1], docs, rng)
    row0 = peak[-1][first_row].mean(0) if first_row.any() else np.full(odd.shape[1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        pc = (np.corrcoef(np.column_stack([pad, odd]).T)[0, 1:] if len(pad) > 2
              else np.full(odd.shape[1], np.nan))
    return [KeyShift(shifts=list(range(1, len(base) + 1)), n=[len(b) for b in base],
                     peak=[float(p[:, j].mean()) for p in peak], slope=[float(s[:, j].mean()) for s in slope],
                     key_angle=[float(a[:, j].mean()) for a in turned],
                     peak_ci=[float(ci[0, j]), float(ci[1, j])], pad_corr=float(pc[j]),
                     peak_first_row=float(row0[j]), n_first_row=int(first_row.sum()),
                     peaks=bool(peak[-1][:, j].mean() >= KEY_SHIFT_MIN_PEAK and ci[0, j] > 0))
            for j in range(odd.shape[1])]
