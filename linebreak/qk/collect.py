"""What the qk stage reads from the model: the documents, one streaming forward pass, and per-value means.

The heads read the residual stream *after* their layer's own norm (TL ``blocks.{L}.ln1.hook_out``; the block
input ``hook_resid_pre`` where no norm comes before attention, as in OLMo-2: :func:`linebreak.hooks.arch.
attention_input_site`), so that is where the two sides are taken:

- query side: word tokens (line-initial words, ``<bos>`` and newlines excluded: line-initial words form their
  own cluster), grouped by character count ``i``;
- key side: newline tokens, grouped by the key label (``width``: the document's wrap width; ``line_len``:
  the length of the line the newline ends).

A head of a q/k-norm model (Qwen3, Gemma-3, OLMo-2) scores its *normed* queries and keys, and the norm is not
linear, so a mean of residual vectors mapped through ``W_Q`` is not the mean of what the head computes. For
such a model the pass also keeps, per head, the per-value sums of the head's own normed queries and keys
(``attn.hook_q_normed`` / ``hook_k_normed``, before rotary): the sides the head really compares.

One pass (:func:`collect`) keeps per-value sums (float64, for the means), the attention from every query token
to its most recent previous newline (for the response curves and the key-side test), and, for the probe
route, the token rows themselves. Every layer's tensors are reduced inside its own hooks as the forward pass
reaches it, and the model is not asked to return its attentions, so at most one layer's attention pattern
(``[batch, heads, T, T]``) is held at a time. Sums are kept apart for the even- and
odd-numbered documents so the verdict can be judged again on each half
(:func:`linebreak.qk.verdict.split_half`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from linebreak.hooks import arch, load
from linebreak.hooks.points import hook_name
from linebreak.hooks.run import as_tensor, batches, hooks, run_with_hooks
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
    """Per-value sums of the vectors attention reads, and token counts. Queries per (count, offset to the
    previous newline; offset 0 only unless rotary), keys per key value: ``q_sum [n_layers, counts, offsets, d]``,
    ``q_n [counts, offsets]``, ``k_sum [n_layers, keys, d]``, ``k_n [keys]``; on a q/k-norm model also the
    heads' own normed queries and keys, ``qn_sum [n_layers, counts, offsets, n_heads, d_head]`` and
    ``kn_sum [n_layers, keys, n_heads, d_head]`` (None otherwise). With a leading axis of 2 (even, odd
    documents) for the two halves."""
    q_sum: np.ndarray
    q_n: np.ndarray
    k_sum: np.ndarray
    k_n: np.ndarray
    qn_sum: np.ndarray | None = None
    kn_sum: np.ndarray | None = None

    def _map(self, f) -> Sums:
        return Sums(*(None if a is None else f(a) for a in (self.q_sum, self.q_n, self.k_sum, self.k_n,
                                                             self.qn_sum, self.kn_sum)))

    def half(self, j: int) -> Sums:
        return self._map(lambda a: a[j])

    def total(self) -> Sums:
        """Both halves added up: the sums over all documents."""
        return self._map(lambda a: a.sum(0))

    @property
    def normed(self) -> bool:
        """Whether the heads' own normed queries and keys were summed (a q/k-norm model)."""
        return self.qn_sum is not None


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


def numpy64(x) -> np.ndarray:
    """A hooked tensor as float64 numpy on the CPU (through float32: what the statistics read)."""
    return x.detach().float().cpu().double().numpy()


def collect(model, lay, ids, lab, cfg: QKConfig, key_values: np.ndarray, rotary: bool) -> Collected:
    """Per-value sums of what attention reads (query: count, key: key label), per-token attention to the
    previous newline, and (``cfg.probes``, on a model without q/k norm) the token rows, in one streaming pass.
    For a rotary model the query sums are kept per (count, offset) over the tokens that have a previous
    newline, so that each head's queries can be rotated to it (:func:`linebreak.qk.maps.rotated_query_map`).
    On a q/k-norm model the heads' own normed queries and keys are summed too (see the module doc)."""
    import torch

    from linebreak.progress import bar

    nL, H, d, dh = lay.n_layers, lay.n_heads, lay.d_model, lay.d_head
    rep = H // lay.n_kv_heads  # query heads per key/value head
    normed = arch.has_qk_norm(model)
    keep_rows = cfg.probes and not normed  # the probe route maps residual directions through W_Q / W_K
    max_c = int(lab["count"].max()) + 1
    max_k = int(key_values.max()) + 1
    n_off = int(lab["offset"][lab["query"]].max()) + 1 if rotary else 1
    sums = Sums(np.zeros((2, nL, max_c, n_off, d)), np.zeros((2, max_c, n_off)),
                np.zeros((2, nL, max_k, d)), np.zeros((2, max_k)),
                np.zeros((2, nL, max_c, n_off, H, dh)) if normed else None,
                np.zeros((2, nL, max_k, H, dh)) if normed else None)
    att_rows: list[list[np.ndarray]] = [[] for _ in range(nL)]
    rows = ProbeRows(q=[[] for _ in range(nL)], k=[[] for _ in range(nL)])
    at = {}  # the current batch: row selections, filled in before its forward pass

    def reads(L):  # what the heads read: the attention norm's output (or the block input, post-norm)
        def fn(x, name):
            x = numpy64(x)
            np.add.at(sums.q_sum, (at["qh"], L, at["qc"], at["qo"]), x[at["qm"]])
            np.add.at(sums.k_sum, (at["kh"], L, at["kv"]), x[at["km"]])
            if keep_rows:
                rows.q[L].append(x[at["qm"]].astype(np.float32))
                rows.k[L].append(x[at["km"]].astype(np.float32))
        return fn

    def normed_q(L):
        def fn(q, name):
            np.add.at(sums.qn_sum, (at["qh"], L, at["qc"], at["qo"]), numpy64(q)[at["qm"]])
        return fn

    def normed_k(L):
        def fn(k, name):
            k = k.repeat_interleave(rep, -2)  # one key per query head: head h reads key head h // rep
            np.add.at(sums.kn_sum, (at["kh"], L, at["kv"]), numpy64(k)[at["km"]])
        return fn

    def to_newline(L):  # attention from query tokens to their most recent previous newline
        def fn(w, name):
            b, t, s = (torch.as_tensor(at[k], device=w.device) for k in ("b", "t", "s"))
            att_rows[L].append(w[b, :, t, s].detach().float().cpu().numpy().reshape(len(at["b"]), H))
        return fn

    site = arch.attention_input_site(model)
    fwd = [(hook_name(site, L), reads(L)) for L in range(nL)]
    fwd += [(hook_name("pattern", L), to_newline(L)) for L in range(nL)]
    if normed:
        fwd += [(hook_name(s, L), f(L)) for L in range(nL) for s, f in (("q_normed", normed_q),
                                                                           ("k_normed", normed_k))]
    with hooks(model, fwd):
        for s, e in bar(list(batches(len(ids), cfg.batch_size)), desc="qk: forward", leave=False):
            qm, c, off = lab["query"][s:e], lab["count"][s:e], lab["offset"][s:e]
            if rotary:
                qm = qm & (off >= 0)
            km, kv = lab["is_newline"][s:e].astype(bool), key_values[s:e]
            half = np.broadcast_to(np.arange(s, e)[:, None] % 2, qm.shape)  # document parity
            doc = np.broadcast_to(np.arange(s, e)[:, None], qm.shape)  # document index
            o = off[qm] if rotary else np.zeros(int(qm.sum()), dtype=np.int64)
            pn = lab["prev_nl"][s:e]
            b, t = np.nonzero(lab["query"][s:e] & (pn >= 0))
            at.update(qm=qm, qh=half[qm], qc=c[qm], qo=o, km=km, kh=half[km], kv=kv[km], b=b, t=t, s=pn[b, t])
            np.add.at(sums.q_n, (half[qm], c[qm], o), 1)
            np.add.at(sums.k_n, (half[km], kv[km]), 1)
            if keep_rows:
                rows.q_lab.append((c[qm], o, doc[qm]))
                rows.k_lab.append((kv[km], doc[km]))
            run_with_hooks(model, as_tensor(ids[s:e]), use_cache=False)  # patterns come from the hooks alone
    att = (np.stack([np.concatenate(a) for a in att_rows], axis=1) if att_rows[0]
           else np.zeros((0, nL, H)))
    return Collected(sums, att, rows)


def per_value_means(sums: np.ndarray, counts: np.ndarray, values: np.ndarray, min_n: int):
    """``(values kept, means [n_layers, kept, ...])``: the values with at least ``min_n`` tokens and their mean
    vectors in every layer, from ``sums [n_layers, values, ...]`` and ``counts [values]``. (Not
    :func:`linebreak.groups.kept_means`: the values sit on axis 1 here and are labels, not indices.)"""
    keep = counts >= min_n
    return values[keep], sums[:, keep] / counts[keep].reshape(1, -1, *([1] * (sums.ndim - 2)))


@dataclass
class Means:
    """The two sides as the verdict reads them: counts ``i_values`` with their per-layer means
    ``Q [n_layers, I, d]``, key values ``k_values`` with ``K [n_layers, K, d]``, of what attention reads (a
    q/k-norm head's own sides are taken from the sums over the same values, :func:`linebreak.qk.maps.head_sides`)."""
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
