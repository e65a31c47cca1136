"""The similarity over counts that a corpus induces, and its spectrum: a prediction made before any training.

A model that predicts the next token from the count must tell apart the counts whose next-token distributions
differ. So the data itself defines a similarity over counts, and the paper's argument (section 7) says its
shape decides the geometry: a narrow similarity truncated to a few dimensions is a Fourier low-pass, so it
rings, while a broad one is carried by one or two smooth modes, a ramp.

The **task centroid** of count ``i`` is the Hellinger embedding of the next-token distribution at the counting
tokens of that count, ``sqrt(P(next | count = i))``. Inner products of such rows are Bhattacharyya affinities,
so the rows are a point set whose Gram matrix is the data's similarity. Given a label ``g`` (``width`` for
wrapped prose, the next column start for tables), the rows are the concatenation over its values of
``sqrt(w_g P(next | count = i, g))``, with ``w_g`` the share of tokens in group ``g``. Their Gram matrix is
then the affinity of counts averaged over the groups: how alike two counts are *for the same document
setting*. That is the similarity a comparison with ``g`` needs.

Next tokens are taken by **class**, not identity (:func:`token_classes`): the count bears on the next token only
through whether it fits, that is through its length and kind (a word, a newline, a run of spaces). Word
identities would split each (count, group) cell over the whole vocabulary, and the sampling noise of those
sparse distributions would read as a similarity that falls to nothing one count away. Some of that noise is
left with classes too, and it always narrows the similarity: on the default prose corpus (given the width)
2,000 documents read PC1 0.43 and all 24,000 read 0.49. So use every document, and compare kernels of corpora
of like size.

The task centroids are measured with the tools the model's centroids are measured with
(:func:`linebreak.probe.manifold.pca_spectrum`, :func:`~linebreak.probe.manifold.peak_width`, and the gated
ringing of :mod:`linebreak.probe.ringing`), so that :func:`count_kernel` can be set beside each trained model's
centroid spectrum (``scripts/kernel_spectrum.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linebreak.io import UserError
from linebreak.probe import manifold, ringing
from linebreak.results import Result

DEFAULT_MIN_PER_VALUE = 20  # the probe stage's own minimum tokens per count (ProbeConfig.min_per_value)


def task_centroids(next_ids: np.ndarray, counts: np.ndarray, vocab: int, groups: np.ndarray | None = None,
                   min_per_value: int = DEFAULT_MIN_PER_VALUE) -> tuple[np.ndarray, np.ndarray]:
    """``(counts kept [V], centroids [V, n_groups * vocab])``: the Hellinger embedding of the next-token
    distribution per count, concatenated over ``groups`` weighted by each group's token share (module doc).

    One row per token: ``next_ids [N]`` (the token that follows), ``counts [N]``, ``groups [N]`` (non-negative
    integers, or None for one group). Counts with fewer than ``min_per_value`` tokens are dropped and only the
    longest run of consecutive counts is kept, as :func:`linebreak.probe.manifold.centroids` keeps them."""
    next_ids, counts = np.asarray(next_ids, dtype=np.int64), np.asarray(counts, dtype=np.int64)
    g = np.zeros(len(counts), dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    if not (len(next_ids) == len(counts) == len(g)) or len(counts) == 0:
        raise UserError(f"task centroids need one next token, count and group per row; got {len(next_ids)}, "
                        f"{len(counts)}, {len(g)} rows")
    if counts.min() < 0 or g.min() < 0 or next_ids.min() < 0 or next_ids.max() >= vocab:
        raise UserError("counts and groups must be non-negative and next tokens inside the vocabulary")
    _, gi = np.unique(g, return_inverse=True)
    n_g, n_c = int(gi.max()) + 1, int(counts.max()) + 1
    joint = np.zeros((n_c, n_g, vocab))
    np.add.at(joint, (counts, gi, next_ids), 1.0)
    per_group = joint.sum(2)  # tokens per (count, group)
    share = np.bincount(gi, minlength=n_g) / len(gi)
    P = joint / np.maximum(per_group, 1.0)[:, :, None]
    rows = np.sqrt(P * share[None, :, None]).reshape(n_c, n_g * vocab)
    uniq, _, ok = manifold.kept_values(counts, min_per_value)  # the count run the model's centroids keep
    return uniq[ok], rows[uniq[ok]]


@dataclass
class TaskKernel(Result):
    """The data's similarity over counts, measured like the model's centroids (see the module doc)."""

    FORMAT = "linebreak-kernel/1"
    given: str | None  # the label the similarity is taken within (None: pooled over every document)
    counts: list[int]  # the counts kept, consecutive
    n_tokens: int
    pca_ratio: list[float]  # variance share of the top 10 PCs of the task centroids
    pc1: float
    top6: float
    dim95: int
    peak_width: float  # full width of the similarity peak, in counts
    ringing: dict  # linebreak.probe.ringing.gated_ringing of the task centroids (profile included)
    ringing_rank6: dict  # the same of their top 6 PCs: what a model with six dimensions for the count can draw


def count_kernel(next_ids, counts, vocab: int, groups=None, given: str | None = None,
                 min_per_value: int = DEFAULT_MIN_PER_VALUE) -> TaskKernel:
    """The :class:`TaskKernel` of rows ``next_ids``, ``counts`` (and ``groups``, named ``given``)."""
    values, C = task_centroids(next_ids, counts, vocab, groups, min_per_value)
    pca = manifold.pca_spectrum(C, 10)
    gate = ringing.gated_ringing(C, values)
    gate6 = ringing.gated_ringing(manifold.pca_spectrum(C, 6)["coords"], values)
    return TaskKernel(given, [int(v) for v in values], int(len(counts)), [float(r) for r in pca["ratio"]],
                      float(pca["ratio"][0]), pca["top6"], pca["dim95"],
                      manifold.peak_width(manifold.cosine_matrix(C)),
                      _plain(gate), _plain(gate6))


def _plain(gate: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in gate.items()}


def token_classes(corpus) -> np.ndarray:
    """Class per token id, as :func:`corpus_kernel` groups next tokens: the newline, each character length of a
    run of spaces (a pad), and each character length of any other token, numbered ``0..n_classes - 1``."""
    vocab = len(corpus.token_lengths)
    strings = corpus.tokenizer.convert_ids_to_tokens(list(range(vocab)))
    decoded = [corpus.tokenizer.convert_tokens_to_string([t]) if t is not None else "" for t in strings]
    kind = np.array([0 if i == corpus.newline_id else (1 if d and not d.strip() else 2)
                     for i, d in enumerate(decoded)])
    key = kind * (int(corpus.token_lengths.max()) + 1) + np.asarray(corpus.token_lengths)
    key[kind == 0] = -1
    return np.unique(key, return_inverse=True)[1]


def corpus_kernel(corpus, split: str = "train", given: str | None = "width", max_docs: int | None = None,
                  min_per_value: int = DEFAULT_MIN_PER_VALUE) -> TaskKernel:
    """:func:`count_kernel` of a corpus split: the counting tokens the probe stage's centroids use
    (:func:`linebreak.probe.manifold.word_rows`) and the class (:func:`token_classes`) of the token after each,
    grouped by the label ``given``."""
    if split not in corpus.splits:
        raise UserError(f"corpus has no split {split!r}; it has: {', '.join(corpus.splits)}")
    ids = corpus.splits[split].input_ids[:max_docs]
    lab = {k: v[: len(ids)] for k, v in corpus.labels(split).items()}
    if given is not None and given not in lab:
        raise UserError(f"the corpus has no label {given!r}; it has: {', '.join(sorted(lab))}")
    lab.setdefault("token_len", corpus.token_lengths[ids])
    rows = manifold.word_rows(lab)
    rows[:, -1] = False  # the last token has no next token in the document
    if given is not None:
        rows &= np.asarray(lab[given]) >= 0  # a label of -1 means "none here" (e.g. no column start after it)
    b, t = np.nonzero(rows)
    groups = None if given is None else np.asarray(lab[given])[b, t]
    classes = token_classes(corpus)
    return count_kernel(classes[ids[b, t + 1]], np.asarray(lab["count"])[b, t], int(classes.max()) + 1,
                        groups, given, min_per_value)
