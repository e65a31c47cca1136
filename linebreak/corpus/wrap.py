"""Greedy fixed-width wrapping, as text and directly as token ids.

Greedy wrapping puts each word on the current line if it fits (with its separating space) and otherwise starts
a new line. So no line is longer than the width, and every line break happens only because the next word
would not fit. *Filled* wrapping (``filler``) first tries to end the line exactly at the width: when the next
word does not fit, a word of exactly the characters left (less its space) is placed if one exists, and the
word that did not fit starts the next line; the line breaks only when no word can fill it. A word longer than
the width cannot be placed at all: for synthetic words that is an error (:class:`WrapError`), never a silently
over-long line. Real text has such words (URLs, table rules, code): :func:`wrap_words` and :func:`wrap_ids` with
``long_words="alone"`` wrap as real wrappers do (``textwrap`` with ``break_long_words=False``): the word stands
alone on a line longer than the width, and the next word starts a new line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from linebreak.io import UserError


class WrapError(UserError):
    """A word is longer than the line width."""


def check_fits(longest_word: str | int, width: int) -> None:
    n = longest_word if isinstance(longest_word, int) else len(longest_word)
    if n > width:
        what = f"{n} characters" if isinstance(longest_word, int) else f"{longest_word[:30]!r} ({n} chars)"
        raise WrapError(f"width {width} is shorter than the longest word, {what}")


LONG_WORDS = ("refuse", "alone")


def check_long_words(long_words: str) -> None:
    """A one-line :class:`UserError` unless ``long_words`` is one of :data:`LONG_WORDS`."""
    if long_words not in LONG_WORDS:
        raise UserError(f"long_words {long_words!r}: choose {' or '.join(LONG_WORDS)}")


def wrap_words(words: Sequence[str], width: int, long_words: str = "refuse") -> list[str]:
    """Greedy wrap of ``words`` into lines of at most ``width`` characters; a longer word is refused
    (``long_words="refuse"``) or stands alone on its own line (``"alone"``)."""
    check_long_words(long_words)
    lines: list[str] = []
    line = ""
    for w in words:
        if len(w) > width and long_words == "alone":
            lines += [line, w] if line else [w]
            line = ""
            continue
        check_fits(w, width)
        if not line:
            line = w
        elif len(line) + 1 + len(w) <= width:
            line += " " + w
        else:
            lines.append(line)
            line = w
    if line:
        lines.append(line)
    return lines


def wrap_ids(word_ids: np.ndarray, word_lengths: np.ndarray, width: int, n_tokens: int,
             first_word_id: int, first_spaced_id: int, newline_id: int,
             filler: Callable[[int], int | None] | None = None, long_words: str = "refuse"
             ) -> tuple[np.ndarray, int]:
    """Greedy-wrap a stream of word ids straight into ``n_tokens`` token ids.

    A line-initial word ``w`` becomes token ``first_word_id + w``, a word after a space
    ``first_spaced_id + w``, a line break ``newline_id``. ``filler(n)``, if given, returns a word id of
    exactly ``n`` characters (or ``None``) to fill a line the next word does not fit. A word longer than
    ``width`` is a :class:`WrapError` (``long_words="refuse"``) or stands alone (``"alone"``): the greedy rule
    then breaks before it (it does not fit after a word) and after it (nothing fits after it). Returns the
    tokens and how many words of the stream were used; raises :class:`ValueError` if the words run out first.
    """
    check_long_words(long_words)
    out = np.empty(n_tokens, dtype=np.int64)
    t = used = count = 0
    lengths = word_lengths[word_ids].tolist()
    ids = word_ids.tolist()
    while t < n_tokens:
        if used >= len(ids):
            raise ValueError("ran out of words")
        w, n = ids[used], lengths[used]
        if n > width and long_words == "refuse":
            check_fits(n, width)
        if count == 0:
            out[t], count = first_word_id + w, n
        elif count + 1 + n <= width:
            out[t], count = first_spaced_id + w, count + 1 + n
        elif filler is not None and (f := filler(width - count - 1)) is not None:
            out[t], count = first_spaced_id + f, width
            t += 1
            continue  # the word that did not fit starts the next line
        else:
            out[t], count = newline_id, 0
            t += 1
            continue  # the same word starts the next line
        used += 1
        t += 1
    return out, used
