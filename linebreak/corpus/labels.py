"""Per-token labels of a wrapped document — the one label function every stage reuses.

For token ``t`` of a document wrapped at width ``W`` (see docs/architecture.md, "Labels"):

- ``count``: characters on the current line up to and including ``t`` (0 at ``<bos>`` and at a newline,
  which starts a new line), so a count is a *sum of token lengths*, not a number of tokens;
- ``width`` = W; ``remaining`` = W - count;
- ``line_len``: at a newline, the length of the line it ends; -1 elsewhere;
- ``is_newline``; ``next_is_newline`` (False for the last token);
- ``next_word_len``: length without its leading space of the next word token after ``t`` (skipping a
  newline), -1 if none;
- ``line_index``: 0-based line of ``t`` (a newline is on the line it starts).

A word token after a non-empty line carries a leading space, so its word length is its token length minus 1;
a line-initial word (after ``<bos>`` or a newline) has none.

A text with words longer than the line (a URL, wrapped with ``long_words="alone"``: :mod:`linebreak.corpus.wrap`)
gains ``over_long`` (:func:`over_long_lines`): ``t`` is on a line longer than ``W``; a newline, the line it ends
(the rule and name of :mod:`linebreak.corpus.offsets`). Such a line is no sample of counting to the width.

A table document (:mod:`linebreak.corpus.tables`) is labelled from its column starts too (``layout``), and
gains :data:`TABLE_LABEL_NAMES` (a line is a row; in a wrapped-prose document of a mixed corpus these are -1
and False):

- ``is_pad``: ``t`` is a pad (a run of spaces); ``next_is_pad``: the next token is one (the decision);
- ``col_index``: the column ``t``'s first character lies in (-1 at ``<bos>`` and newlines);
- ``cell_index``: the pads before ``t`` on its row: the ordinal of the cell ``t`` is in (a pad: the cell it
  closes), counting only the cells written (-1 at ``<bos>`` and newlines). Equal to ``col_index`` unless a cell
  of the row was left empty or overflowed its column: it is what "the j-th cell of the row above" reads, where
  ``col_index`` is what the same character column reads;
- ``next_col``: the first column start at least ``MIN_PAD`` past ``count`` (-1 past the last column): at
  ``t`` before a pad that does not skip an empty cell, the pad's length is ``next_col - count`` (after a cell
  that overflows its column too: the pad runs to the first start it can reach);
- ``cell_start``: ``t`` is the first word of a cell (the first token of its row, or the one after a pad);
- ``pad_determined``: ``t`` is a pad on a row >= 1 of a document without empty cells: its length follows
  from the count and the layout, which row 0 shows in full. (In a shifted document whether a pad skips a cell
  is a draw: the Bayes reference of :mod:`linebreak.train.baselines` gives its probability.)
"""

from __future__ import annotations

import numpy as np

from linebreak.corpus.tokenizer import MIN_PAD

LABEL_NAMES = ("count", "width", "remaining", "line_len", "is_newline", "next_is_newline", "next_word_len",
               "line_index")
TABLE_LABEL_NAMES = ("is_pad", "next_is_pad", "col_index", "cell_index", "next_col", "cell_start",
                     "pad_determined")


def token_labels(token_lengths: np.ndarray, is_newline: np.ndarray, width: int) -> dict[str, np.ndarray]:
    """Labels of one document from its per-token character lengths and newline mask (arrays of shape [T])."""
    lengths = np.asarray(token_lengths, dtype=np.int64)
    nl = np.asarray(is_newline, dtype=bool)
    T = len(lengths)
    line_index = np.cumsum(nl)
    chars = np.where(nl, 0, lengths)
    total = np.cumsum(chars)
    # characters before the current line started = running total at the last newline at or before t
    start = np.maximum.accumulate(np.where(nl, np.arange(T), -1))
    before = np.where(start >= 0, total[np.maximum(start, 0)], 0)
    count = total - before
    prev_count = np.concatenate([[0], count[:-1]])
    line_len = np.where(nl, prev_count, -1)
    word_len = np.where(nl | (lengths == 0), -1, lengths - (prev_count > 0))
    return {
        "count": count,
        "width": np.full(T, width, dtype=np.int64),
        "remaining": width - count,
        "line_len": line_len,
        "is_newline": nl,
        "next_is_newline": np.concatenate([nl[1:], [False]]),
        "next_word_len": next_value(word_len),
        "line_index": line_index.astype(np.int64),
    }


def next_value(word_len: np.ndarray) -> np.ndarray:
    """Per position t, ``word_len`` at the nearest position > t where it is >= 0 (a word starts there), else
    -1: the length of the next word after t."""
    word_len = np.asarray(word_len, dtype=np.int64)
    T = len(word_len)
    nxt = np.minimum.accumulate(np.where(word_len >= 0, np.arange(T), T)[::-1])[::-1]  # first start at >= t
    after = np.concatenate([nxt[1:], [T]])
    return np.where(after < T, np.concatenate([word_len, [-1]])[after], -1).astype(np.int64)


def over_long_lines(lab: dict[str, np.ndarray]) -> np.ndarray:
    """``over_long`` from labels of :func:`token_labels` (one document [T] or stacked [n_docs, T]): the token is
    on a line longer than its width (a newline: the line it ends)."""
    count, nl = np.atleast_2d(lab["count"]), np.atleast_2d(lab["is_newline"])
    n, T = count.shape
    line = np.atleast_2d(lab["line_index"]) - nl + np.arange(n)[:, None] * (T + 1)  # one key per (doc, line)
    longest = np.zeros(n * (T + 1), dtype=np.int64)
    np.maximum.at(longest, line.ravel(), count.ravel())
    return (longest[line] > np.atleast_2d(lab["width"])).reshape(np.shape(lab["count"]))


def table_labels(lab: dict[str, np.ndarray], token_lengths: np.ndarray, is_pad: np.ndarray,
                 col_starts: np.ndarray, shifted: bool) -> dict[str, np.ndarray]:
    """:data:`TABLE_LABEL_NAMES` of one document from its :func:`token_labels`, per-token lengths, pad mask
    and column starts (entries < 0 are unused; none at all: a prose document)."""
    starts = np.asarray(col_starts, dtype=np.int64)
    starts = starts[starts >= 0]
    count, nl = lab["count"], lab["is_newline"]
    pad = np.asarray(is_pad, dtype=bool)
    T = len(count)
    if not len(starts):
        no, none = np.zeros(T, dtype=bool), np.full(T, -1, dtype=np.int64)
        return {"is_pad": no, "next_is_pad": no.copy(), "col_index": none, "cell_index": none.copy(),
                "next_col": none.copy(), "cell_start": no.copy(), "pad_determined": no.copy()}
    chars = np.where(nl, 0, np.asarray(token_lengths, dtype=np.int64))
    begin = count - chars  # where t's first character sits on its line
    real = (chars > 0) & ~nl
    after = np.searchsorted(starts, count + MIN_PAD, side="left")  # a pad holds at least MIN_PAD spaces
    before = np.cumsum(pad) - pad  # pads before t in the document; less those before its row's first token
    row_start = np.concatenate([[True], lab["line_index"][1:] != lab["line_index"][:-1]])
    cells = before - np.maximum.accumulate(np.where(row_start, before, 0))
    return {
        "is_pad": pad,
        "next_is_pad": np.concatenate([pad[1:], [False]]),
        "col_index": np.where(real, np.searchsorted(starts, begin, side="right") - 1, -1).astype(np.int64),
        "cell_index": np.where(real, cells, -1).astype(np.int64),
        "next_col": np.where(after < len(starts), starts[np.minimum(after, len(starts) - 1)], -1),
        "cell_start": real & ~pad & np.concatenate([[True], (pad | (chars == 0))[:-1]]),  # after <bos>, \n, pad
        "pad_determined": pad & (lab["line_index"] >= 1) & (not shifted),
    }


def labels_for_split(input_ids: np.ndarray, widths: np.ndarray, token_lengths_by_id: np.ndarray,
                     newline_id: int, layout: dict[str, np.ndarray] | None = None,
                     pad_by_id: np.ndarray | None = None, over_long: bool = False) -> dict[str, np.ndarray]:
    """:func:`token_labels` for every document of a split: each label as an array [n_docs, T]; with a table
    ``layout`` (``col_starts [n_docs, max_cols]``, ``shifted [n_docs]``) and the pad mask of the token ids,
    also :func:`table_labels`; with ``over_long`` (a text with words longer than the line), also
    :func:`over_long_lines`."""
    input_ids = np.asarray(input_ids)
    per_doc = [token_labels(token_lengths_by_id[ids], ids == newline_id, int(w))
               for ids, w in zip(input_ids, np.asarray(widths))]
    names = LABEL_NAMES
    if layout is not None:
        names += TABLE_LABEL_NAMES
        for d, (ids, lab) in enumerate(zip(input_ids, per_doc)):
            lab |= table_labels(lab, token_lengths_by_id[ids], pad_by_id[ids], layout["col_starts"][d],
                                bool(layout["shifted"][d]))
    out = {name: np.stack([d[name] for d in per_doc]) for name in names}
    if over_long:
        out["over_long"] = over_long_lines(out)
    return out
