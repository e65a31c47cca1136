"""Reference newline predictors: the oracle-width and posterior Bayes predictors and the constant rate.

With words drawn independently, whether the line breaks after a word depends only on the characters left,
``r = W - count``: the next word (plus its space) fits iff ``1 + L <= r``, so

    P(break | r) = P(1 + L > r) = P(L >= r)        (the *oracle*: it is told the width W).

The width is never written in the text, so the achievable optimum is the *posterior* predictor: the average
of ``P(L >= W - count)`` over the widths still consistent with the document so far (uniform prior over the
corpus widths; every count seen is <= W, and each finished line of length ``k`` whose next word has length
``L`` says ``W <= k + L``). Information captured is measured against the posterior one; the gap between the
two is the first lines of each document, where the width is not yet known. With a per-document word-length
bias or a real text, words are not independent and these are references, not strict optima. A line longer
than the width (``over_long``: a URL standing alone, :mod:`linebreak.corpus.wrap`) says nothing about ``W``:
its counts are left out of the bound, and the break after it is not scored (:func:`newline_positions`).

With ``fill`` (lines filled to the width, :mod:`linebreak.corpus.wrap`) a word that does not fit is replaced
by one of exactly ``r - 1`` characters when that length exists, so the line breaks only if no word has that
length: ``P(break | r) = P(L >= r) * [no word of length r - 1]``, and a finished line of length ``k`` also
rules out every width ``W`` for which a word of length ``W - k - 1`` would have filled it.
"""

from __future__ import annotations

import numpy as np


def _fillable(length_probs: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Is there a word of exactly ``n`` characters (elementwise; False outside the lengths)?"""
    n = np.asarray(n)
    has = np.asarray(length_probs) > 0
    return (n >= 1) & (n < len(has)) & has[np.clip(n, 0, len(has) - 1)]


def break_prob_oracle(remaining: np.ndarray, length_probs: np.ndarray, fill: bool = False) -> np.ndarray:
    """P(next token is a newline | r characters left) for word lengths distributed as ``length_probs``
    (``fill``: lines are filled to the width when a word of ``r - 1`` characters exists)."""
    tail = np.cumsum(length_probs[::-1])[::-1]  # tail[l] = P(L >= l)
    tail[: np.flatnonzero(length_probs)[0] + 1] = 1.0  # exactly 1 where no word fits (no rounding)
    r = np.asarray(remaining)
    p = np.where(r <= 0, 1.0, tail[np.clip(r, 0, len(tail) - 1)] * (r < len(tail)))
    return np.where(_fillable(length_probs, r - 1), 0.0, p) if fill else p


def break_prob_posterior(labels: dict[str, np.ndarray], widths: list[int], length_probs: np.ndarray,
                         fill: bool = False) -> np.ndarray:
    """P(break after t) averaged over the widths consistent with the document up to t; shape [n_docs, T]."""
    ws = np.asarray(widths)
    out = np.zeros(labels["count"].shape)
    for d in range(len(out)):
        count, nl = labels["count"][d], labels["is_newline"][d]
        seen = np.where(labels["over_long"][d], 0, count) if "over_long" in labels else count
        low = np.maximum.accumulate(seen)  # W >= every count seen (on a line that kept to the width)
        # at the token after a newline, the line it ended (k) and the word that did not fit (L) are known
        k, next_len = labels["line_len"][d], labels["next_word_len"][d]
        bound = np.where(nl & (next_len >= 0), k + next_len, np.iinfo(np.int64).max)
        high = np.minimum.accumulate(np.concatenate([[np.iinfo(np.int64).max], bound[:-1]]))
        ok = (ws[None, :] >= low[:, None]) & (ws[None, :] <= high[:, None])  # [T, n_widths]
        if fill:  # a width at which some word would have filled an earlier line is ruled out after it
            filled = nl[:, None] & _fillable(length_probs, ws[None, :] - k[:, None] - 1)
            ok &= ~np.logical_or.accumulate(np.concatenate([np.zeros((1, len(ws)), bool), filled[:-1]]), axis=0)
        p = break_prob_oracle(ws[None, :] - count[:, None], length_probs, fill)
        out[d] = (p * ok).sum(1) / np.maximum(ok.sum(1), 1)
    return out


def newline_positions(labels: dict[str, np.ndarray]) -> np.ndarray:
    """Where a newline decision is scored: word tokens that have a next token (mask [n_docs, T]), not on a
    line longer than the width (its break is forced by the word, not a wrap decision at the width)."""
    mask = (labels["count"] > 0) & ~labels["is_newline"]
    if "word_end" in labels:  # external corpora: a break can follow only a word's last token
        mask &= labels["word_end"]
    if "over_long" in labels:
        mask &= ~labels["over_long"]
    mask[:, -1] = False
    return mask


def binary_ce(p: np.ndarray, y: np.ndarray, eps: float = 1e-12) -> float:
    """Mean binary cross-entropy (nats) of probabilities ``p`` for outcomes ``y``."""
    p = np.clip(np.asarray(p, dtype=float), eps, 1 - eps)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


# ---- pad lengths in table corpora (linebreak.corpus.tables) -------------------------------------------------
def pad_length_bayes(labels: dict[str, np.ndarray], col_starts: np.ndarray, pad_len: np.ndarray,
                     table: dict, word_length_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Bayes reference for the length of the next pad, given that a pad comes, under the generator's
    distribution (``table``: the corpus's ``table`` record), at every position where the next token is a pad.

    Row 0: the next column start is a draw, ``start + g`` with ``g`` from :func:`linebreak.corpus.tables.
    gap_posterior` given the cell's content length. Rows >= 1: row 0 has shown the whole layout, so the pad
    ends at the first column start it can reach (``next_col``: past an overflowing cell's column too), unless a
    shifted document skips an empty cell there; that happens with
    :func:`linebreak.corpus.tables.skip_probability`, where P(shifted) starts at ``empty_cells`` and is updated
    by each finished row's pattern of empty cells. Returns ``(q, top)`` [n_docs, T]: the probability of the
    pad that came (``pad_len``, the next token's length), and whether it is the most probable length (ties
    count as right); 0 and False elsewhere.
    """
    from linebreak.corpus import tables as tab

    gaps, empty = sorted(table["col_gap"]), float(table["empty_cells"])
    content = tab.content_length_probs(word_length_probs, int(table["cell_words"]), max(gaps))
    q, top = np.zeros(labels["count"].shape), np.zeros(labels["count"].shape, dtype=bool)
    for d in range(len(q)):
        starts = col_starts[d][col_starts[d] >= 0]
        if not len(starts) or not labels["next_is_pad"][d].any():
            continue
        n_cols, p_shift, above, present = len(starts), empty, tab.NO_EMPTY, []
        count, col, row = labels["count"][d], labels["col_index"][d], labels["line_index"][d]
        for t in np.flatnonzero(labels["cell_start"][d] | labels["is_newline"][d] | labels["next_is_pad"][d]):
            if labels["is_newline"][d][t]:  # a finished row: its pattern updates P(shifted)
                missing = sorted(set(range(n_cols)) - set(present))
                pattern = missing[0] if missing else tab.NO_EMPTY
                if row[t] >= 2:  # the row that ended is row >= 1 (row 0 is full in every document)
                    plain, shifted = tab.pattern_likelihood(n_cols, above, pattern)
                    p_shift = p_shift * shifted / max(p_shift * shifted + (1 - p_shift) * plain, 1e-300)
                above, present = pattern, []
                continue
            if labels["cell_start"][d][t]:
                present.append(int(col[t]))
            if not labels["next_is_pad"][d][t]:
                continue
            c, n = int(col[t]), int(count[t])
            if row[t] == 0:
                post = tab.gap_posterior(n - int(starts[c]), gaps, content)
                dist = dict(zip((int(starts[c]) + g - n for g in gaps), post))
            else:
                skipped = len(present) < c + 1  # a column before this one was left empty in this row
                ps = 0.0 if skipped else tab.skip_probability(n_cols, c, above, p_shift)
                dist = {int(labels["next_col"][d][t]) - n: 1 - ps}  # an overflowing cell's pad: the start after
                if ps > 0:
                    dist[int(starts[c + 2]) - n] = ps
            q[d, t] = dist.get(int(pad_len[d, t]), 0.0)
            top[d, t] = q[d, t] >= max(dist.values()) - 1e-12
    return q, top
