"""What the twist test reads when the keys are a class of tokens other than the previous newline: the earlier
rows' column starts of a table (``--keys cell_start`` or ``--keys pad``, issue 19).

In a column-aligned table (:mod:`linebreak.corpus.tables`) the pad after a cell must bring the count to the
next column start, and that start is shown only by the rows above: by the token that begins the cell of that
column. So the comparison a table head must make is count at the query against count at the key:

- query side: the tokens whose next token is a pad, on rows >= 1 (where the layout has been shown), grouped by
  their character count ``i`` (:func:`query_tokens`);
- key side: the tokens of a class that marks a column start (:func:`key_values`), grouped by that start ``k``:
  the words that begin a cell (``cell_start``, at the character where the word begins), or the pads
  (``pad``, at the character where the pad ends). The table models trained here read the pads: their
  matching heads put 0.3-0.5 of a pad decision's attention on the earlier rows' pads that end at its next
  column start, and under 0.05 on the words that begin it (docs/research/tables.md);
- the pairs: each query with every key of the same document on an earlier row (:func:`pairs`). A query sits
  at a varying token distance from the key of its own column, so only the character counts align.

One pass (:func:`collect`) keeps, in the :class:`linebreak.qk.collect.Sums` layout that the verdict reads:

- per-(count, token offset) sums of the query vectors, *one per pair with a key on the previous row* (``q_n``
  counts those pairs), so that a rotary head's query side is the mean over pairs of ``R_offset q``
  (:func:`linebreak.qk.maps.rotated_query_map`): the query as it scores the previous row's keys, on average
  (rows further up sit further away in tokens, and their rotation would blur the average);
- per-column-start sums of the key vectors (``k_n`` counts key tokens);
- on a q/k-norm model (Qwen3, Gemma-3, OLMo-2), the same sums of each head's own normed queries and keys
  (``qn_sum`` / ``kn_sum``), the sides such a head compares (:mod:`linebreak.qk.maps`): a mean of residual
  vectors through ``W_Q`` is not the mean of what the norm makes of them;
- for every pair and head, the head's real attention logit (from its own ``hook_q`` / ``hook_k``, rotated by the
  pair's offset: exact, before any soft cap) and its attention probability (``hook_pattern``).

The even- and odd-numbered documents are summed apart, as for newline keys, so that the verdict can be judged
again on each half.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linebreak.hooks import arch
from linebreak.hooks.points import hook_name
from linebreak.hooks.run import Reader, read_pass
from linebreak.io import UserError
from linebreak.qk.collect import Sums, analysed_layers, check_budget, numpy64, planned_bytes
from linebreak.qk.config import QKConfig


def query_tokens(lab: dict) -> np.ndarray:
    """``[n_docs, T]``: the tokens that decide a pad where the layout is known (next token a pad, row >= 1, not
    the last position, whose next token is not in the document)."""
    q = lab["next_is_pad"].astype(bool) & (lab["line_index"] >= 1)
    q[:, -1] = False
    return q


def key_values(lab: dict, keys: str) -> np.ndarray:
    """``[n_docs, T]``: the column start each key token of class ``keys`` marks, -1 at every other token.
    ``cell_start``: a word that begins a cell, keyed by the character where it begins (count less its own
    length); ``pad``: a pad, keyed by where it ends (its count), which is the start of the next column."""
    if keys == "cell_start":
        return np.where(lab["cell_start"].astype(bool), lab["count"] - lab["token_len"], -1).astype(np.int64)
    if keys == "pad":
        return np.where(lab["is_pad"].astype(bool), lab["count"], -1).astype(np.int64)
    raise UserError(f"no table key class {keys!r}: cell_start | pad")


@dataclass
class Pairs:
    """Every (query, key) pair: document ``b``, query position ``t``, key position ``s`` (``t > s``, the key on
    an earlier row), the query's count ``i``, the key's column start ``k``, the query's next column start
    ``target`` and column index ``q_col``, the key's column index ``k_col``, the rows between them ``rows``, and
    the ordinal reading: the key's cell index ``k_cell`` and ``cell_target``, the cell index of the key that
    "the same cell of the row above" names (``cell_index`` label: the cell the query closes for pads, the next
    one for cell starts). Without empty cells ``k_cell == cell_target`` exactly where ``k == target``."""
    b: np.ndarray
    t: np.ndarray
    s: np.ndarray
    i: np.ndarray
    k: np.ndarray
    target: np.ndarray
    q_col: np.ndarray
    k_col: np.ndarray
    rows: np.ndarray
    k_cell: np.ndarray
    cell_target: np.ndarray

    @property
    def offset(self) -> np.ndarray:
        """Tokens between query and key, ``t - s``: what a rotary head rotates the query by."""
        return self.t - self.s

    def take(self, m: np.ndarray) -> Pairs:
        return Pairs(*(getattr(self, f)[m] for f in self.__dataclass_fields__))


def pairs(lab: dict, keys: str) -> Pairs:
    """All (query, key) pairs of the documents (:func:`query_tokens`, :func:`key_values` of class ``keys``),
    document by document, queries in position order."""
    q, kv, line = query_tokens(lab), key_values(lab, keys), lab["line_index"]
    out = []
    for b in range(len(q)):
        t, s = np.flatnonzero(q[b]), np.flatnonzero(kv[b] >= 0)
        tt, ss = np.repeat(t, len(s)), np.tile(s, len(t))
        m = line[b, ss] < line[b, tt]
        tt, ss = tt[m], ss[m]
        out.append((np.full(len(tt), b), tt, ss))
    b, t, s = (np.concatenate([o[j] for o in out]).astype(np.int64) for j in range(3))
    cell = lab["cell_index"]
    return Pairs(b, t, s, lab["count"][b, t], kv[b, s], lab["next_col"][b, t], lab["col_index"][b, t],
                 lab["col_index"][b, s], line[b, t] - line[b, s], cell[b, s], cell[b, t] + (keys == "cell_start"))


def check_table(lab: dict) -> None:
    """A one-line :class:`UserError` unless the labels are a table corpus' with queries and keys."""
    if "cell_start" not in lab:
        raise UserError("--keys cell_start and --keys pad need a table corpus (linebreak generate --layout table)")
    if not query_tokens(lab).any():
        raise UserError("no pad decisions on a table's second row or later in these documents: use more documents")


@dataclass
class PairScores:
    """Per pair (in :class:`Pairs` order) and head: the attention logit ``logit [pairs, H]`` (``q . k / divisor``
    as the head computes it, before any soft cap) and probability ``prob [pairs, H]``, per analysed layer."""
    logit: dict[int, np.ndarray]
    prob: dict[int, np.ndarray]


@dataclass
class KeyClassData:
    halves: Sums  # leading axis 2: even / odd documents; q_n counts pairs
    q_tokens: np.ndarray  # [counts]: query tokens per count (the threshold of a per-count mean)
    pairs: Pairs
    scores: PairScores
    tables: dict | None  # the rotary tables by analysed layer (offsets 0..T), None without rotary


def pair_logits(q: np.ndarray, k: np.ndarray, offset: np.ndarray, rep: int, table, divisor: float) -> np.ndarray:
    """``[pairs, heads]``: the logits of queries ``q [pairs, H, dh]`` on keys ``k [pairs, kv_heads, dh]`` (both
    before rotary, query head ``h`` reading key head ``h // rep``) ``offset`` tokens back, as the head scores
    them: the query rotated by its offset (``table``: the layer's rotary tables, None without rotary), then
    ``q . k / divisor``."""
    k = np.repeat(k, rep, axis=-2)
    if table is not None:
        n, H, dh = q.shape
        q = arch.rotate_by_offset(q.reshape(n * H, dh), np.repeat(offset, H), table).reshape(n, H, dh)
    return (q * k).sum(-1) / divisor


def collect(model, lay, ids: np.ndarray, lab: dict, cfg: QKConfig, rotary: bool) -> KeyClassData:
    """The sums, token counts and per-pair scores of the module doc, in one pass over the layers ``cfg.layers``."""
    import torch

    check_table(lab)
    layers = analysed_layers(model, lay, cfg)
    slot = {L: j for j, L in enumerate(layers)}
    nL, H, d = len(layers), lay.n_heads, lay.d_model
    rep = H // lay.n_kv_heads
    P = pairs(lab, cfg.keys)
    qt, kv = query_tokens(lab), key_values(lab, cfg.keys)
    max_c, max_k = int(lab["count"].max()) + 1, int(kv.max()) + 1
    n_off = int(P.offset.max()) + 1 if rotary else 1
    off = P.offset if rotary else np.zeros_like(P.offset)
    normed, dh = arch.has_qk_norm(model), lay.d_head
    check_budget(planned_bytes(lay, nL, max_c, n_off, max_k, len(P.b), 0, normed), cfg, nL)
    sums = Sums(np.zeros((2, nL, max_c, n_off, d)), np.zeros((2, max_c, n_off)), np.zeros((2, nL, max_k, d)),
                np.zeros((2, max_k)), np.zeros((2, nL, max_c, n_off, H, dh)) if normed else None,
                np.zeros((2, nL, max_k, H, dh)) if normed else None, layers=tuple(layers))
    near = P.rows == 1  # the pairs the query sums are taken over
    np.add.at(sums.q_n, (P.b[near] % 2, P.i[near], off[near]), 1)
    kb, ks = np.nonzero(kv >= 0)
    np.add.at(sums.k_n, (kb % 2, kv[kb, ks]), 1)
    q_tokens = np.bincount(lab["count"][qt], minlength=max_c).astype(float)
    scores = PairScores({L: np.zeros((len(P.b), H)) for L in layers}, {L: np.zeros((len(P.b), H)) for L in layers})
    tables = {L: arch.rotary_tables(model, ids.shape[1], L) for L in layers} if rotary else None
    at: dict = {}
    site = arch.attention_input_site(model)
    q_site, k_site = ("q_normed", "k_normed") if normed else ("q", "k")

    def add(q_sum, k_sum, L, q_rows, k_rows):  # one layer's query rows (per summed pair) and key rows (per key)
        np.add.at(q_sum, (at["half"], slot[L], at["i"], at["off"]), q_rows)
        np.add.at(k_sum, (at["k_half"], slot[L], at["k_value"]), k_rows)

    def reads(L):
        def fn(x, name):
            x = numpy64(x)
            add(sums.q_sum, sums.k_sum, L, x[at["qb"], at["qt"]], x[at["kb"], at["ks"]])
        return fn

    def grab(kind, L):
        def fn(x, name):
            at[(kind, L)] = numpy64(x)
            if ("q", L) in at and ("k", L) in at:  # whichever of the two the layer computes last
                score(L)
        return fn

    def score(L):  # q . k of every pair, the query rotated by its offset to the key (both before rotary)
        q, k = at.pop(("q", L)), at.pop(("k", L))
        if normed:  # the sides a q/k-norm head compares: its own normed queries and keys, summed as reads() sums x
            add(sums.qn_sum, sums.kn_sum, L, q[at["qb"], at["qt"]],
                np.repeat(k[at["kb"], at["ks"]], rep, axis=-2))  # one key per query head: head h reads key h // rep
        pb, pt, ps = at["b"], at["t"], at["s"]
        scores.logit[L][at["rows"]] = pair_logits(q[pb, pt], k[pb, ps], pt - ps, rep,
                                                  None if tables is None else tables[L], arch.score_divisor(model, L))

    def prob(L):
        def fn(w, name):
            b, t, s = (torch.as_tensor(at[k], device=w.device) for k in ("b", "t", "s"))
            scores.prob[L][at["rows"]] = w[b, :, t, s].detach().float().cpu().double().numpy()
        return fn

    fwd = [(hook_name(site, L), reads(L)) for L in layers]
    fwd += [(hook_name(q_site, L), grab("q", L)) for L in layers] + [(hook_name(k_site, L), grab("k", L))
                                                                     for L in layers]
    fwd += [(hook_name("pattern", L), prob(L)) for L in layers]

    def begin(s, e):  # the batch's pairs and the key values of its documents
        rows = np.flatnonzero((P.b >= s) & (P.b < e))
        summed = rows[near[rows]]
        kb, ks = np.nonzero(kv[s:e] >= 0)  # the batch's key tokens
        at.update(rows=rows, b=P.b[rows] - s, t=P.t[rows], s=P.s[rows], qb=P.b[summed] - s, qt=P.t[summed],
                  i=P.i[summed], off=off[summed], half=P.b[summed] % 2, kb=kb, ks=ks, k_value=kv[s:e][kb, ks],
                  k_half=(kb + s) % 2)

    read_pass(model, ids, cfg.batch_size, [Reader(fwd, begin, len(ids))], desc="qk: forward")
    return KeyClassData(sums, q_tokens, P, scores, tables)
