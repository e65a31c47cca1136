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
"""

from __future__ import annotations

import numpy as np

LABEL_NAMES = ("count", "width", "remaining", "line_len", "is_newline", "next_is_newline", "next_word_len",
               "line_index")


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


def labels_for_split(input_ids: np.ndarray, widths: np.ndarray, token_lengths_by_id: np.ndarray,
                     newline_id: int) -> dict[str, np.ndarray]:
    """:func:`token_labels` for every document of a split: each label as an array [n_docs, T]."""
    input_ids = np.asarray(input_ids)
    per_doc = [token_labels(token_lengths_by_id[ids], ids == newline_id, int(w))
               for ids, w in zip(input_ids, np.asarray(widths))]
    return {name: np.stack([d[name] for d in per_doc]) for name in LABEL_NAMES}
