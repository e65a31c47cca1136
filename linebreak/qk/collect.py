"""What the qk stage reads from the model: the documents, one streaming forward pass, and per-value means.

The heads read the residual stream *after* their layer's own norm (TL ``blocks.{L}.ln1.hook_normalized``), so
that is where the two sides are taken:

- query side: word tokens (line-initial words, ``<bos>`` and newlines excluded: line-initial words form their
  own cluster), grouped by character count ``i``;
- key side: newline tokens, grouped by the key label (``width``: the document's wrap width; ``line_len``:
  the length of the line the newline ends).

One pass (:func:`collect`) keeps per-value sums (float64, for the means), the attention from every query token
to its most recent previous newline (for the response curves and the key-side test), and, for the probe
route, the token rows themselves. Sums are kept apart for the even- and odd-numbered documents so the
verdict can be judged again on each half (:func:`linebreak.qk.verdict.split_half`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from linebreak.hooks import arch, load
from linebreak.hooks.points import hook_name
from linebreak.hooks.run import as_tensor, batches, run_with_cache
from linebreak.io import UserError
from linebreak.probe import manifold
from linebreak.qk.config import QKConfig


def select_docs(corpus, split: str, n_docs: int) -> tuple[np.ndarray, dict]:
    """The first ``n_docs`` documents of ``split`` and their labels, plus ``query`` (non-initial word
    tokens), ``prev_nl`` (position of the most recent newline before each token, -1 if none) and ``offset``
    (tokens back to it, -1 if none)."""
    if split not in corpus.splits:
        raise UserError(f"corpus has no split {split!r}; it has: {', '.join(corpus.splits)}")
    ids = corpus.splits[split].input_ids[:n_docs]
    lab = {k: v[:n_docs] for k, v in corpus.labels(split).items()}
    is_nl = lab["is_newline"].astype(bool)
    lab.setdefault("token_len", corpus.token_lengths[ids])  # per position if the corpus has it
    lab["query"] = manifold.word_rows(lab)  # the same counting tokens as the manifold's centroids
    T = ids.shape[1]
    last = np.where(is_nl, np.arange(T), -1)
    last = np.maximum.accumulate(last, axis=1)
    lab["prev_nl"] = np.concatenate([np.full((len(ids), 1), -1), last[:, :-1]], axis=1)
    lab["offset"] = np.where(lab["prev_nl"] >= 0, np.arange(T) - lab["prev_nl"], -1)  # tokens back to it
    return ids, lab


def check_model(model, tokenizer, corpus) -> arch.Layout:
    """The model's layout, after checking it has attention, fits the corpus' vocabulary and tokenizer, and
    computes eager attention (so its attention pattern can be read)."""
    lay = arch.layout(model)
    if lay.n_layers < 1 or lay.n_heads < 1:
        raise UserError("no attention layers found in the model")
    if tokenizer is not None:
        load.check_tokenizer_matches(tokenizer, corpus)
    load.check_vocab_fits(model, max(int(s.input_ids.max()) for s in corpus.splits.values()))
    load.ensure_eager(model)
    return lay


@dataclass
class Sums:
    """Per-value sums of ln1 vectors and token counts. Queries per (count, offset to the previous newline;
    offset 0 only unless rotary), keys per key value: ``q_sum [n_layers, counts, offsets, d]``,
    ``q_n [counts, offsets]``, ``k_sum [n_layers, keys, d]``, ``k_n [keys]``; with a leading axis of 2 (even,
    odd documents) for the two halves."""
    q_sum: np.ndarray
    q_n: np.ndarray
    k_sum: np.ndarray
    k_n: np.ndarray

    def half(self, j: int) -> Sums:
        return Sums(self.q_sum[j], self.q_n[j], self.k_sum[j], self.k_n[j])

    def total(self) -> Sums:
        """Both halves added up: the sums over all documents."""
        return Sums(self.q_sum.sum(0), self.q_n.sum(0), self.k_sum.sum(0), self.k_n.sum(0))


@dataclass
class ProbeRows:
    """The token rows the probe route fits on, per layer and batch (float32), and their labels per batch:
    ``q_lab`` (count, offset, document), ``k_lab`` (key value, document)."""
    q: list[list[np.ndarray]]
    k: list[list[np.ndarray]]
    q_lab: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    k_lab: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class Collected:
    halves: Sums  # leading axis 2: even / odd documents
    attention: np.ndarray  # [query tokens with a previous newline, n_layers, n_heads], in np.nonzero order
    rows: ProbeRows | None  # None once the probe route has used them (or when it is off: empty lists)


def collect(model, lay, ids, lab, cfg: QKConfig, key_values: np.ndarray, rotary: bool) -> Collected:
    """Per-value sums of ln1 vectors (query: count, key: key label), per-token attention to the previous
    newline, and (``cfg.probes``) the token rows, in one streaming pass. For a rotary model the query sums are
    kept per (count, offset) over the tokens that have a previous newline, so that each head's queries can be
    rotated to it (:func:`linebreak.qk.maps.rotated_query_map`)."""
    from linebreak.progress import bar

    nL, H, d = lay.n_layers, lay.n_heads, lay.d_model
    max_c = int(lab["count"].max()) + 1
    max_k = int(key_values.max()) + 1
    n_off = int(lab["offset"][lab["query"]].max()) + 1 if rotary else 1
    q_sum, q_n = np.zeros((2, nL, max_c, n_off, d)), np.zeros((2, max_c, n_off))
    k_sum, k_n = np.zeros((2, nL, max_k, d)), np.zeros((2, max_k))
    att_rows = []
    rows = ProbeRows(q=[[] for _ in range(nL)], k=[[] for _ in range(nL)])
    ln1 = [hook_name("ln1", L) for L in range(nL)]  # what the heads read: the attention norm's output
    pattern = [hook_name("pattern", L) for L in range(nL)]
    for s, e in bar(list(batches(len(ids), cfg.batch_size)), desc="qk: forward", leave=False):
        _, cache = run_with_cache(model, as_tensor(ids[s:e]), ln1 + pattern, output_attentions=True)
        qm, c, off = lab["query"][s:e], lab["count"][s:e], lab["offset"][s:e]
        if rotary:
            qm = qm & (off >= 0)
        o = off[qm] if rotary else np.zeros(int(qm.sum()), dtype=np.int64)
        km, kv = lab["is_newline"][s:e].astype(bool), key_values[s:e]
        doc = np.broadcast_to(np.arange(s, e)[:, None], qm.shape)  # document index
        half = doc % 2  # document parity
        np.add.at(q_n, (half[qm], c[qm], o), 1)
        np.add.at(k_n, (half[km], kv[km]), 1)
        if cfg.probes:
            rows.q_lab.append((c[qm], o, doc[qm]))
            rows.k_lab.append((kv[km], doc[km]))
        for L in range(nL):
            x = cache[ln1[L]].double().numpy()
            np.add.at(q_sum, (half[qm], L, c[qm], o), x[qm])
            np.add.at(k_sum, (half[km], L, kv[km]), x[km])
            if cfg.probes:
                rows.q[L].append(x[qm].astype(np.float32))
                rows.k[L].append(x[km].astype(np.float32))
        # attention from query tokens to their most recent previous newline
        pn = lab["prev_nl"][s:e]
        sel = lab["query"][s:e] & (pn >= 0)
        b, t = np.nonzero(sel)
        pat = np.stack([cache[name].numpy() for name in pattern], axis=1)  # [B, L, H, T, T]
        att_rows.append(pat[b, :, :, t, pn[b, t]].reshape(len(b), nL, H))
    att = np.concatenate(att_rows) if att_rows else np.zeros((0, nL, H))
    return Collected(Sums(q_sum, q_n, k_sum, k_n), att, rows)


def per_value_means(sums: np.ndarray, counts: np.ndarray, values: np.ndarray, min_n: int):
    """``(values kept, means [n_layers, kept, d])``: the values with at least ``min_n`` tokens and their mean
    vectors in every layer, from ``sums [n_layers, values, d]`` and ``counts [values]``. (Not
    :func:`linebreak.groups.kept_means`: the values sit on axis 1 here and are labels, not indices.)"""
    keep = counts >= min_n
    return values[keep], sums[:, keep] / counts[keep][None, :, None]


@dataclass
class Means:
    """The two sides as the verdict reads them: counts ``i_values`` with their per-layer means
    ``Q [n_layers, I, d]``, key values ``k_values`` with ``K [n_layers, K, d]``."""
    i_values: np.ndarray
    Q: np.ndarray
    k_values: np.ndarray
    K: np.ndarray


def value_means(sums: Sums, cfg: QKConfig, n_docs: int) -> Means:
    """Per-count and per-key-value means over all documents (offsets pooled); a :class:`UserError` when too
    few values have ``cfg.min_per_value`` tokens."""
    i_values, Q = per_value_means(sums.q_sum.sum(2), sums.q_n.sum(1), np.arange(len(sums.q_n)), cfg.min_per_value)
    k_values, K = per_value_means(sums.k_sum, sums.k_n, np.arange(len(sums.k_n)), cfg.min_per_value)
    if len(k_values) < cfg.min_values:
        raise UserError(f"too few lines per width: only {len(k_values)} {cfg.key_label} values have "
                        f">= {cfg.min_per_value} newline tokens in {n_docs} documents (need "
                        f"{cfg.min_values}); use more documents or a lower --min-per-value")
    if len(i_values) < cfg.min_values:
        raise UserError(f"too few counts: only {len(i_values)} counts have >= {cfg.min_per_value} tokens")
    return Means(i_values, Q, k_values, K)
