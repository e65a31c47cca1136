"""Column-aligned tables: documents whose rows put words in character columns (``CorpusConfig.layout``).

Why: wrapping needs attention that only *rises* as the line nears its width, which a query term plus a key
term gives (docs/research/comparison.md). Here the next token after a cell is a *pad* (one token of ``k``
spaces, :mod:`linebreak.corpus.tokenizer`) that brings the count to the next column start, and that start is
visible only in the rows above, at the same *character* column: a match that must peak at a count
(issue 19, ``shared/research/peaked-match.md``).

The generator, per document:

- a layout: ``C`` columns drawn uniformly from ``table_cols``; column ``c`` is ``g_c`` characters wide (start
  to start), each ``g_c`` drawn independently and uniformly from ``col_gap``; the starts are
  ``0, g_0, g_0 + g_1, ...`` and the document's width is ``sum(g)``. The layout is never written;
- each cell holds ``m ~ U{1..cell_words}`` words drawn by frequency, redrawn (all of them) until the content
  fits with a pad of at least two spaces (``L <= g_c - 2``); the first word of a cell has no leading space,
  the others one; a pad then brings the count to the next non-empty column's start; the last cell ends with
  a newline. So the token distance to the same column in the row above varies, only character counts align;
- with probability ``empty_cells`` the document is *shifted*: row 0 is full (the whole layout is visible),
  and every later row leaves a pattern of empty cells that differs from the row above's, drawn uniformly:
  pattern 0 is "no empty cell", pattern ``e`` in ``1..C-2`` leaves interior column ``e`` empty (its pad runs
  on to the start of column ``e + 1``). Guarantee: in every row ``r >= 1`` some cell ``j`` (0-based, among
  the non-empty cells) sits in a different column from the ``j``-th non-empty cell of row ``r - 1``, and both
  exist: the ordinal key ("the j-th cell of the row above") and the count key (the same column) disagree in
  every row. (Rows with patterns ``a != b``: at ``j = min`` of the two empty columns, one row has column
  ``j`` and the other ``j + 1``; "no empty cell" counts as ``C - 1`` there.) With 3 columns the rows simply
  alternate full and empty-middle.
- with ``overflow`` > 0 (tab-stop semantics; not with empty cells), each cell of a row ``r >= 1`` in a column
  ``c <= C - 3`` runs past its column's end with probability ``overflow``: its content is redrawn, from
  ``1..2 * cell_words`` words, until it ends where a pad of ``MIN_PAD`` can no longer reach column ``c + 1``
  but can reach ``c + 2`` (``g_c - 1 <= L <= g_c + g_{c+1} - 2``), and its pad runs on to the start of
  ``c + 2``; a cell that finds no such content in :data:`OVERFLOW_TRIES` draws is written as a plain one.
  Every pad still ends at the first column start at least ``MIN_PAD`` past the content, so after row 0 its
  length follows from the count and the layout alone; but a column's width is no longer "pad plus cell" in
  every row, and after an overflow the j-th cell of a row sits in another column than the row above's: the
  relative reading ("this cell's pad is its column's width less its content, column j of row 0") must track
  every overflow of the row, one after the other, where the count's reading is one comparison.

The Bayes reference for pad lengths (:mod:`linebreak.train.baselines`) uses :func:`gap_posterior` (row 0,
where the next start is a draw) and :func:`skip_probability` (later rows of shifted documents, where
whether a pad skips a column is a draw).
"""

from __future__ import annotations

import numpy as np

from linebreak.corpus.tokenizer import FIRST_WORD_ID, MIN_PAD, NEWLINE_ID, first_pad_id
from linebreak.corpus.words import WordVocab

NO_EMPTY = 0  # the row pattern without an empty cell
OVERFLOW_TRIES = 200  # draws of an overflowing cell's content before it is written as a plain cell


def draw_layout(rng: np.random.Generator, cols: list[int], gaps: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Column widths ``g`` and starts of one document."""
    n = int(rng.choice(cols))
    g = rng.choice(gaps, size=n).astype(np.int64)
    return g, np.concatenate([[0], np.cumsum(g[:-1])]).astype(np.int64)


def allowed_patterns(n_cols: int, above: int | None) -> list[int]:
    """Empty-cell patterns a shifted document's row may take after a row of pattern ``above`` (None: row 0)."""
    if above is None:
        return [NO_EMPTY]
    return [p for p in range(n_cols - 1) if p != above]


def table_document(vocab: WordVocab, n_tokens: int, rng: np.random.Generator, cols: list[int],
                   gaps: list[int], cell_words: int, empty_cells: float, overflow: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """One table document of ``n_tokens`` token ids (no ``<bos>``): the ids, the column starts, the width and
    whether it is shifted (see the module docstring)."""
    n = len(vocab.words)
    spaced, pad0 = FIRST_WORD_ID + n, first_pad_id(n)
    g, starts = draw_layout(rng, cols, gaps)
    shifted = bool(rng.random() < empty_cells)
    out: list[int] = []
    above, row = None, 0
    while len(out) < n_tokens:
        pattern = int(rng.choice(allowed_patterns(len(g), above))) if shifted else NO_EMPTY
        pos, c = 0, 0
        while c < len(g):
            if pattern != NO_EMPTY and c == pattern:
                c += 1
                continue
            if c > 0:
                out.append(pad0 + int(starts[c] - pos) - MIN_PAD)
                pos = int(starts[c])
            over = overflow > 0 and row >= 1 and c + 2 < len(g) and rng.random() < overflow
            words = cell_words_in(vocab, rng, 2 * cell_words, int(g[c]) - 1, int(g[c] + g[c + 1]) - MIN_PAD,
                                  OVERFLOW_TRIES) if over else None
            span = 1 if words is None else 2
            if words is None:  # a plain cell: redrawn until it fits before a pad of MIN_PAD spaces
                words = cell_words_in(vocab, rng, cell_words, 0, int(g[c]) - MIN_PAD)
            out += [FIRST_WORD_ID + int(words[0])] + [spaced + int(w) for w in words[1:]]
            pos += content_length(vocab, words)
            c += span
        out.append(NEWLINE_ID)
        above, row = pattern, row + 1
    return np.asarray(out[:n_tokens], dtype=np.int64), starts, int(g.sum()), shifted


def cell_words_in(vocab: WordVocab, rng: np.random.Generator, most: int, lo: int, hi: int,
                  tries: int | None = None) -> np.ndarray | None:
    """The word ids of one cell, ``1..most`` words drawn by frequency, redrawn (all of them) until the content,
    separating spaces included, has ``lo..hi`` characters; None after ``tries`` draws (None: no limit)."""
    n, k = len(vocab.words), 0
    while tries is None or k < tries:
        words = rng.choice(n, size=int(rng.integers(1, most + 1)), p=vocab.probs)
        if lo <= content_length(vocab, words) <= hi:
            return words
        k += 1
    return None


def content_length(vocab: WordVocab, words: np.ndarray) -> int:
    """The characters of a cell's content: its words' letters and one space between each two."""
    return int(vocab.lengths[words].sum() + len(words) - 1)


def max_pad(gaps: list[int], empty_cells: float, overflow: float = 0.0) -> int:
    """The longest pad a table can hold: a one-character cell; with empty cells, the next column too; after an
    overflowing cell, which ends at least one character before the next column's start, that column and one."""
    longest = (2 if empty_cells > 0 else 1) * max(gaps) - 1
    return max(longest, max(gaps) + 1) if overflow > 0 else longest


# ---- the generator's distribution, for the Bayes reference ------------------------------------------------------
def content_length_probs(word_length_probs: np.ndarray, cell_words: int, max_len: int) -> np.ndarray:
    """P(cell content has L characters) for L = 0..max_len *before* the fit condition: ``m ~ U{1..cell_words}``
    words of independent lengths, ``m - 1`` separating spaces."""
    lp = np.asarray(word_length_probs, dtype=float)
    out, conv = np.zeros(max_len + 1), np.array([1.0])
    for m in range(1, cell_words + 1):
        conv = np.convolve(conv, lp)  # the length of m words' letters
        spaced = np.concatenate([np.zeros(m - 1), conv])[: max_len + 1]
        out[: len(spaced)] += spaced / cell_words
    return out


def gap_posterior(content_len: int, gaps: list[int], content_probs: np.ndarray) -> np.ndarray:
    """P(column width = each of ``gaps`` | its cell's content has ``content_len`` characters) in row 0.

    Widths are uniform a priori; a cell is redrawn until ``L <= g - 2``, so its content has likelihood
    ``P0(content) / Z(g)`` with ``Z(g) = P0(L <= g - 2)``, and the posterior is ``∝ [L <= g - 2] / Z(g)``."""
    cum = np.cumsum(content_probs)
    g = np.asarray(gaps)
    z = cum[np.clip(g - MIN_PAD, 0, len(cum) - 1)]
    w = np.where(g - MIN_PAD >= content_len, 1.0 / np.maximum(z, 1e-300), 0.0)
    return w / w.sum() if w.sum() > 0 else w


def skip_probability(n_cols: int, col: int, above: int, p_shifted: float) -> float:
    """P(the pad after column ``col`` skips column ``col + 1``) in a row after one of pattern ``above``, when
    this row has no empty cell yet, and the document is shifted with probability ``p_shifted``."""
    allowed = allowed_patterns(n_cols, above)
    consistent = [p for p in allowed if p == NO_EMPTY or p > col]
    skip = (col + 1) in allowed and 1 <= col + 1 <= n_cols - 2
    shifted = p_shifted / len(allowed)
    den = shifted * len(consistent) + (1 - p_shifted)
    return shifted * skip / den if den > 0 else 0.0


def pattern_likelihood(n_cols: int, above: int, pattern: int) -> tuple[float, float]:
    """P(a finished row has ``pattern`` | the row above's), for a plain and for a shifted document."""
    allowed = allowed_patterns(n_cols, above)
    return float(pattern == NO_EMPTY), (1.0 / len(allowed)) if pattern in allowed else 0.0
