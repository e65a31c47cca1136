"""Synthetic word types: a vocabulary with lengths 1..max_len and Zipf-like frequencies.

Only the *lengths* of words matter for line breaking, so the vocabulary is built so that every length from
``min_len`` to ``max_len`` is present (an equal share of the types per length, capped by how many distinct
lowercase spellings of that length exist) and frequencies follow Zipf's law, ``p(rank) ∝ rank^-s``, over a
seeded random ranking of the types. Words are then sampled independently, which is what makes the
Bayes-optimal newline predictor a closed form of the characters remaining (see :mod:`linebreak.train.baselines`).

The optional per-document *length bias* tilts the distribution towards shorter or longer words in each
document, ``p_doc(w) ∝ p(w) · exp(b · len(w))`` with ``b ~ U[-bias, bias]``, so that "tokens since the
newline" stops being a good proxy for characters since the newline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linebreak.io import UserError

ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz"))


@dataclass(frozen=True)
class WordVocab:
    """Word types (without spaces) and their sampling probabilities."""

    words: tuple[str, ...]
    probs: np.ndarray  # [n_types], sums to 1

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(w) for w in self.words], dtype=np.int64)

    def length_probs(self, max_len: int | None = None) -> np.ndarray:
        """P(word length = l) for l = 0..max_len (index = length)."""
        lengths = self.lengths
        out = np.zeros((max_len or int(lengths.max())) + 1)
        np.add.at(out, lengths, self.probs)
        return out


def synthetic_vocab(n_types: int, min_len: int, max_len: int, zipf: float, seed: int) -> WordVocab:
    """``n_types`` distinct random lowercase words of lengths ``min_len..max_len``, Zipf frequencies."""
    rng = np.random.default_rng([seed, 1])
    lengths = np.arange(min_len, max_len + 1)
    capacity = np.array([26**int(l) for l in lengths], dtype=float)
    if capacity.sum() < n_types:
        raise ValueError(f"cannot make {n_types} distinct words of lengths {min_len}..{max_len}")
    # equal share per length (water-filling): lengths that run out of spellings pass their share on
    counts = np.zeros(len(lengths), dtype=np.int64)
    while (left := n_types - int(counts.sum())) > 0:
        open_ = np.flatnonzero(counts < capacity)
        share = np.full(len(open_), left // len(open_))
        share[: left % len(open_)] += 1
        counts[open_] += np.minimum(share, capacity[open_] - counts[open_]).astype(np.int64)
    words: list[str] = []
    for length, count in zip(lengths, counts):
        seen: set[str] = set()
        while len(seen) < count:
            seen.add("".join(rng.choice(ALPHABET, size=int(length))))
        words.extend(sorted(seen))
    ranks = rng.permutation(len(words)) + 1
    probs = ranks.astype(float) ** -zipf
    return WordVocab(tuple(words), probs / probs.sum())


def text_vocab(words: list[str]) -> WordVocab:
    """The vocabulary of a word stream: its distinct words (sorted) and their empirical frequencies."""
    types, counts = np.unique(np.array(words, dtype=object), return_counts=True)
    return WordVocab(tuple(str(t) for t in types), counts / counts.sum())


def sample_word_ids(vocab: WordVocab, n: int, rng: np.random.Generator, length_bias: float = 0.0
                    ) -> np.ndarray:
    """``n`` independent word ids; ``length_bias`` > 0 tilts the length distribution for this call."""
    probs = vocab.probs
    if length_bias > 0:
        b = rng.uniform(-length_bias, length_bias)
        probs = probs * np.exp(b * vocab.lengths)
        probs = probs / probs.sum()
    return rng.choice(len(probs), size=n, p=probs)


def markov_chain(vocab: WordVocab, successors: int, rng: np.random.Generator) -> np.ndarray:
    """A random sparse bigram model ``[n_types, n_types]``: each word may be followed by ``successors`` words.

    The successors of each word are drawn from ``vocab.probs`` without replacement and weighted by a flat
    Dirichlet, so common words stay common while the next word depends strongly on the current one. Text
    drawn from it (:func:`markov_word_ids`) makes a model keep each word's identity in its residual stream
    beside the count: a test of the paper's "crowded residual" explanation of curvature (docs/research/helix.md).
    """
    n = len(vocab.words)
    if not 1 <= successors <= n:
        raise ValueError(f"successors must be within 1..{n}, got {successors}")
    T = np.zeros((n, n))
    for w in range(n):
        nxt = rng.choice(n, size=successors, replace=False, p=vocab.probs)
        T[w, nxt] = rng.dirichlet(np.ones(successors))
    return T


def markov_word_ids(T: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` word ids walked along the bigram model ``T``, from a uniformly drawn first word."""
    cum = np.cumsum(T, axis=1)
    u = rng.random(n)
    out = np.empty(n, dtype=np.int64)
    w = int(rng.integers(len(T)))
    for i in range(n):
        out[i] = w = min(int(np.searchsorted(cum[w], u[i] * cum[w, -1], side="right")), len(T) - 1)
    return out


def read_text_words(path: str) -> list[str]:
    """The words of a UTF-8 text file (split on whitespace: its line breaks are dropped)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"text file not found: {p}")
    try:
        words = p.read_text(encoding="utf-8").split()
    except UnicodeDecodeError:
        raise UserError(f"text file is not UTF-8: {p}") from None
    if not words:
        raise UserError(f"text file has no words: {p}")
    return words
