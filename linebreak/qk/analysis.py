"""``linebreak qk``: find boundary heads and test whether their QK circuit twists count onto width.

For a trained model and its corpus this computes, at the input of every attention layer *after that layer's
own norm* (TL ``blocks.{L}.ln1.hook_normalized``, what the heads really read):

- query side: the mean vector per character count ``i`` over word tokens (line-initial words, ``<bos>`` and
  newlines excluded: line-initial words form their own cluster); key side: the mean vector per width ``k``
  over newline tokens (``key_label="width"``: the document's wrap width; ``"line_len"``: the length of the
  line the newline ends). Values with fewer than ``min_per_value`` tokens are dropped.
- per head: the cosine matrices count-through-``W_Q`` vs width-through-``W_K``, identity and a random
  control. In a rotary model (Llama, NeoX) a head scores the key ``Δ`` tokens back with
  ``(R_Δ q) . k``, not ``q . k``, and ``Δ`` (tokens since the newline) grows with the count; so there the
  query side is the mean over the tokens of count ``i`` of ``R_Δ (x W_Q + b_Q)``, each token rotated by its
  offset to the previous newline, and only tokens that have one enter (``query_frame`` in the result). Without
  this a rotary head's QK matrix would be judged at offset 0, which is not what it computes. Then the matrices
  come with offsets, line fits, ranking score and verdict (:mod:`linebreak.qk.twist`);
- per head, measured attention: the attention from each word token to the most recent previous newline,
  binned by characters remaining (response curves), and the *key-side comparison test*: holding the width
  and the count fixed, does attention to that newline move with the length of the line it ended? (A head
  that compares count with the key's width must; a head gated by the query's own remaining-count need not.)
- per head, *how* it compares (:func:`linebreak.qk.twist.score_decomposition`): its mean attention logit from a
  count-``i`` query onto a width-``k`` newline, split into a count effect, a width effect and their
  interaction. Subtraction on ramps is all additive; a twist is all interaction, and the cosine test sees only
  that part, so the split says what share of the head's real comparison the verdict is judging.
- for the top heads: the PCA of their summed outputs, per characters remaining (the paper: 2 PCs, 92 %).
- the *probe route* (``probes=True``), the paper's own sides: one logistic probe per count on the query
  tokens and one per width on the newline tokens (:func:`linebreak.probe.estimators.value_probes`, held out by
  document), their weight vectors taken through every head as above (rotary queries rotated by the
  offsets at which each count occurs) and judged by the same verdict. Probes are discriminative
  directions, not centroids; they show what the head does to the directions that *tell counts apart*.
  The model's verdict stays on the means; the probe route is reported beside it (``verdict["probes"]``).

The result is one JSON-ready dict, including the verdict and the numbers that decide it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from linebreak.hooks import arch, heads
from linebreak.io import UserError
from linebreak.probe import manifold
from linebreak.probe.estimators import value_probes
from linebreak.qk import twist


@dataclass(frozen=True)
class QKConfig:
    split: str = field(default="validation", metadata={"help": "corpus split to analyse"})
    n_docs: int = field(default=128, metadata={"help": "documents to run through the model"})
    batch_size: int = 16
    key_label: str = field(default="width", metadata={"help": "key-side value at newlines: width | line_len"})
    min_per_value: int = field(default=8, metadata={"help": "tokens needed for a count/width mean"})
    min_values: int = field(default=5, metadata={"help": "distinct widths (and counts) needed at all"})
    top: int = field(default=3, metadata={"help": "top heads to detail (matrices, response curves, PCA)"})
    max_remaining: int = field(default=40, metadata={"help": "characters remaining kept in curves and PCA"})
    seed: int = field(default=0, metadata={"help": "seed of the random controls"})
    probes: bool = field(default=True, metadata={"help": "also judge every head with logistic value probes "
                                                          "as the two sides (the paper's route)"})




# ---- data -----------------------------------------------------------------------------------------------
def select_docs(corpus, split: str, n_docs: int) -> tuple[np.ndarray, dict]:
    """The first ``n_docs`` documents of ``split`` and their labels, plus ``query`` (non-initial word
    tokens) and ``prev_nl`` (position of the most recent newline before each token, -1 if none)."""
    if split not in corpus.splits:
        raise UserError(f"corpus has no split {split!r}; it has: {', '.join(corpus.splits)}")
    ids = corpus.splits[split].input_ids[:n_docs]
    lab = {k: v[:n_docs] for k, v in corpus.labels(split).items()}
    is_nl = lab["is_newline"].astype(bool)
    lab["token_len"] = corpus.token_lengths[ids]
    lab["query"] = manifold.word_rows(lab)  # the same counting tokens as the manifold's centroids
    T = ids.shape[1]
    last = np.where(is_nl, np.arange(T), -1)
    last = np.maximum.accumulate(last, axis=1)
    lab["prev_nl"] = np.concatenate([np.full((len(ids), 1), -1), last[:, :-1]], axis=1)
    lab["offset"] = np.where(lab["prev_nl"] >= 0, np.arange(T) - lab["prev_nl"], -1)  # tokens back to it
    return ids, lab


def _means(sums: np.ndarray, counts: np.ndarray, values: np.ndarray, min_n: int):
    keep = counts >= min_n
    return values[keep], sums[:, keep] / counts[keep][None, :, None]


def _check_model(model, tokenizer, corpus) -> arch.Layout:
    lay = arch.layout(model)
    if lay.n_layers < 1 or lay.n_heads < 1:
        raise UserError("no attention layers found in the model")
    if tokenizer is not None:
        arch.check_tokenizer_matches(tokenizer, corpus)
    arch.check_vocab_fits(model, max(int(s.input_ids.max()) for s in corpus.splits.values()))
    arch.ensure_eager(model)
    return lay


# ---- the measured pass ----------------------------------------------------------------------------------
def _collect(model, lay, ids, lab, cfg: QKConfig, key_values: np.ndarray, rotary: bool):
    """Per-value sums of ln1 vectors (query: count, key: key label) and per-token attention to the
    previous newline, in one streaming pass. For a rotary model the query sums are kept per (count, offset
    to the previous newline) over the tokens that have one, so that each head's queries can be rotated to that
    newline (:func:`_rotated_query_map`). Sums are kept apart for the two halves of the documents (even and
    odd index; leading axis of size 2: ``q_sum [2, n_layers, counts, offsets, d]``, ``k_sum [2, n_layers,
    widths, d]``) for the split-half check of the verdict; the full sums are their total."""
    from linebreak.progress import bar

    nL, H, d = lay.n_layers, lay.n_heads, lay.d_model
    max_c = int(lab["count"].max()) + 1
    max_k = int(key_values.max()) + 1
    n_off = int(lab["offset"][lab["query"]].max()) + 1 if rotary else 1
    q_sum, q_n = np.zeros((2, nL, max_c, n_off, d)), np.zeros((2, max_c, n_off))
    k_sum, k_n = np.zeros((2, nL, max_k, d)), np.zeros((2, max_k))
    att_rows = []
    rows: dict = {"q": [[] for _ in range(nL)], "k": [[] for _ in range(nL)], "q_lab": [], "k_lab": []}
    for s, e in bar(list(heads.batches(len(ids), cfg.batch_size)), desc="qk: forward", leave=False):
        out = heads.forward(model, heads.as_tensor(ids[s:e]), ln1=True)
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
            rows["q_lab"].append((c[qm], o, doc[qm]))
            rows["k_lab"].append((kv[km], doc[km]))
        for L in range(nL):
            x = out["ln1"][L].double().numpy()
            np.add.at(q_sum, (half[qm], L, c[qm], o), x[qm])
            np.add.at(k_sum, (half[km], L, kv[km]), x[km])
            if cfg.probes:
                rows["q"][L].append(x[qm].astype(np.float32))
                rows["k"][L].append(x[km].astype(np.float32))
        # attention from query tokens to their most recent previous newline
        pn = lab["prev_nl"][s:e]
        sel = lab["query"][s:e] & (pn >= 0)
        b, t = np.nonzero(sel)
        pat = np.stack([p.numpy() for p in out["pattern"]], axis=1)  # [B, L, H, T, T]
        att_rows.append(pat[b, :, :, t, pn[b, t]].reshape(len(b), nL, H))
    att = np.concatenate(att_rows) if att_rows else np.zeros((0, nL, H))
    return (q_sum, q_n), (k_sum, k_n), att, rows


def _rotated_query_map(S: np.ndarray, n: np.ndarray, tables):
    """Per-count query vectors of a rotary head as it scores the previous newline: the mean over tokens of
    ``R_offset (x W_Q + b_Q)``, from per-(count, offset) sums ``S [counts, offsets, d]`` and counts
    ``n [counts, offsets]``. Returns ``map(W, b) -> [counts, d_head]`` for :func:`linebreak.qk.twist.head_summary`."""
    ci, oi = np.nonzero(n)
    rows, n_rows, n_c = S[ci, oi], n[ci, oi], n.sum(1)

    def query_map(W, b=None):
        M = rows @ W + (0.0 if b is None else n_rows[:, None] * np.asarray(b, dtype=np.float64))
        R = arch.rotate_by_offset(M, oi, tables)
        out = np.zeros((len(n), R.shape[1]))
        np.add.at(out, ci, R)
        return out / n_c[:, None]

    return query_map


def _query_map(S_layer: np.ndarray, n: np.ndarray, values: np.ndarray, Q_means: np.ndarray, tables):
    """The query side of one layer as :func:`linebreak.qk.twist.head_summary` takes it: rotated to the previous
    newline (:func:`_rotated_query_map`) when the model is rotary (``tables`` given), else the plain means."""
    if tables is None:
        return twist.plain_query_map(Q_means)
    return _rotated_query_map(S_layer[values], n[values], tables)


def mean_logits(qmap, K_means: np.ndarray, W_Q, b_Q, W_K, b_K) -> np.ndarray:
    """``S[i, k]``: the head's mean attention logit (scaled by ``1/sqrt(d_head)``, biases in) from a query token
    at count ``i`` onto a newline key of width ``k``; ``qmap`` gives the queries as the head sees them (rotated
    to the newline in a rotary model). The logit is linear in each side, so the mean over all such (query, key)
    pairs is the logit of the two means."""
    return qmap(W_Q, b_Q) @ (K_means @ W_K + b_K).T / np.sqrt(W_Q.shape[1])


def _binned(x: np.ndarray, y: np.ndarray, values: np.ndarray, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``y`` per value of ``x`` (values with fewer than ``min_n`` points are nan)."""
    out = np.full(len(values), np.nan)
    for j, v in enumerate(values):
        m = x == v
        if m.sum() >= min_n:
            out[j] = y[m].mean()
    return out, values


# A head's attention "moves with the key" when, with width and count held fixed, the earlier line's length
# explains at least this share of the attention variance beyond what shuffled lengths explain ...
KEY_SIDE_MIN_EXCESS = 0.05
# ... and no more than this fraction of within-group shuffles explain as much (a permutation p-value).
KEY_SIDE_MAX_P = 0.01
KEY_SIDE_SHUFFLES = 199


def key_side_test(attn: np.ndarray, width: np.ndarray, count: np.ndarray, prev_len: np.ndarray,
                  rng: np.random.Generator, min_group: int = 4, n_shuffles: int = KEY_SIDE_SHUFFLES) -> dict:
    """Does attention to the previous newline move with that line's length when width and count are fixed?

    Within each (width, count) group, ``attn`` and ``prev_len`` are centred; ``corr`` is the pooled
    correlation (the monotone part); ``eta2`` the share of the within-group attention variance explained by
    the previous line's length taken as categories (any shape of dependence, e.g. a bump). Small cells make
    ``eta2`` large by chance, so its null is measured: the lengths are permuted within groups
    ``n_shuffles`` times; ``eta2_shuffled`` is the mean and ``excess`` = ``eta2 - eta2_shuffled``;
    ``p_value`` the share of shuffles (plus the observed) with ``eta2`` at least as large. ``moves`` when
    ``excess >= KEY_SIDE_MIN_EXCESS`` and ``p_value <= KEY_SIDE_MAX_P``.
    """
    nan = float("nan")
    groups = width.astype(np.int64) * 100003 + count.astype(np.int64)
    uniq, inv, n = np.unique(groups, return_inverse=True, return_counts=True)
    keep = n[inv] >= min_group
    if keep.sum() < 3:
        return {"corr": nan, "eta2": nan, "eta2_shuffled": nan, "excess": nan, "p_value": nan,
                "moves": False, "n": int(keep.sum())}
    a, k = attn[keep], prev_len[keep].astype(np.int64)
    g = np.unique(inv[keep], return_inverse=True)[1]

    def demean(v):
        return v - (np.bincount(g, v) / np.bincount(g))[g]

    a_c, k_c = demean(a), demean(k.astype(float))
    denom = np.sqrt((a_c**2).sum() * (k_c**2).sum())
    corr = float((a_c * k_c).sum() / denom) if denom > 0 else nan
    tot = float((a_c**2).sum())

    def eta2(kk):
        cell = g * (int(k.max()) + 2) + kk
        _, ci = np.unique(cell, return_inverse=True)
        cm = (np.bincount(ci, a_c) / np.bincount(ci))[ci]
        return float((cm**2).sum() / tot) if tot > 0 else nan

    # permute lengths within groups: both orders list the groups alike, so pairing them shuffles within
    by_group = np.argsort(g, kind="stable")
    null = np.empty(n_shuffles)
    for j in range(n_shuffles):
        shuffled = np.empty_like(k)
        shuffled[by_group] = k[np.lexsort((rng.random(len(g)), g))]
        null[j] = eta2(shuffled)
    e = eta2(k)
    excess = e - float(null.mean())
    p = float((1 + (null >= e).sum()) / (1 + n_shuffles))
    return {"corr": corr, "eta2": e, "eta2_shuffled": float(null.mean()), "excess": excess, "p_value": p,
            "moves": bool(excess >= KEY_SIDE_MIN_EXCESS and p <= KEY_SIDE_MAX_P), "n": int(keep.sum())}


def _response(att_h: np.ndarray, remaining: np.ndarray, values: np.ndarray, min_n: int) -> dict:
    curve, _ = _binned(remaining, att_h, values, min_n)
    ok = np.isfinite(curve)
    rho = float("nan")
    if ok.sum() >= 3:
        from scipy.stats import spearmanr

        rho = float(spearmanr(values[ok], curve[ok]).statistic)
    return {"remaining": values, "attention": curve,
            "range": float(np.nanmax(curve) - np.nanmin(curve)) if ok.any() else float("nan"),
            "peak_remaining": int(values[np.nanargmax(curve)]) if ok.any() else None,
            "spearman_vs_remaining": rho}


def response_range(head: dict) -> float:
    """How far a head's attention to the previous newline moves across characters remaining (its response
    curve's range); -1 where it was not measured (nan, or null in JSON), so such heads sort last."""
    r = head.get("response", {}).get("range")
    return -1.0 if r is None or not np.isfinite(r) else float(r)


def _pca(X: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Explained-variance ratios (up to 10) and the projection onto the top ``n`` components of centred rows."""
    p = manifold.pca_spectrum(X, k=max(n, 10))
    return p["ratio"], p["coords"][:, :n]


def _top_head_outputs(model, lay, ids, lab, top: list[tuple[int, int]], cfg: QKConfig) -> dict:
    """PCA of the top heads' summed outputs, averaged per characters remaining (0..max_remaining)."""
    layers = sorted({L for L, _ in top})
    R = cfg.max_remaining + 1
    ns = np.zeros(R)
    per_head = {lh: np.zeros((R, lay.d_model)) for lh in top}
    for s, e in heads.batches(len(ids), cfg.batch_size):
        out = heads.forward(model, heads.as_tensor(ids[s:e]), z=tuple(layers), attention=False)
        rem = lab["remaining"][s:e]
        m = lab["query"][s:e] & (rem >= 0) & (rem < R)
        np.add.at(ns, rem[m], 1)
        for L in layers:
            hs = [h for LL, h in top if LL == L]
            outs = heads.head_outputs(model, L, out["z"][L], hs)
            for h, o in outs.items():
                np.add.at(per_head[(L, h)], rem[m], o.double().numpy()[m])
    keep = ns >= cfg.min_per_value
    values = np.arange(R)[keep]
    summed = sum(per_head.values())[keep] / ns[keep, None]
    ratio, proj = _pca(summed, 3)
    heads_1d = {f"L{L}H{h}": twist.pc1_share(v[keep] / ns[keep, None]) for (L, h), v in per_head.items()}
    return {"remaining": values, "explained_variance_ratio": ratio[:6], "top2": float(ratio[:2].sum()),
            "pcs": proj, "per_head_pc1": heads_1d}


def _rank_key(summary: dict) -> tuple:
    """Heads rank by twist score, ties broken by the offset line's R^2, then by alignment (both routes)."""
    return (-summary["score"], -twist._finite(summary["qk"]["r2"]), -twist._finite(summary["qk"]["alignment"]))


# ---- the probe route ------------------------------------------------------------------------------------
PROBE_KEYS = ("qk", "identity", "control", "gain_over_identity", "gain_over_control", "pc1_share", "score",
              "verdict")


def probe_route(rows: dict, q_n: np.ndarray, model, lay, i_values, k_values, tables, cfg: QKConfig):
    """Every head judged with logistic value probes as its two sides, per layer: one probe per count on the
    query tokens and one per key value on the newline tokens, fitted on the same ln1 rows as the means and
    held out by document. A rotary head's query for count ``i`` is the probe through ``W_Q`` rotated by the
    offsets at which count ``i`` occurs, averaged with their frequencies ``q_n [counts, offsets]``. The
    controls draw from their own seed, so the means' numbers do not move. Returns ``({(L, h): summary},
    [per-layer probe fit])``."""
    c, o, g = (np.concatenate(a) for a in zip(*rows["q_lab"]))
    kv, kg = (np.concatenate(a) for a in zip(*rows["k_lab"]))
    rng = np.random.default_rng([cfg.seed, 1])
    out, fits = {}, []
    for L in range(lay.n_layers):
        pq = value_probes(np.concatenate(rows["q"][L]), c, g, keep=i_values, seed=cfg.seed)
        pk = value_probes(np.concatenate(rows["k"][L]), kv, kg, keep=k_values, seed=cfg.seed)
        fits.append({"layer": L, "count_rmse": pq.rmse_test, "count_accuracy": pq.accuracy_test,
                     "key_rmse": pk.rmse_test, "key_accuracy": pk.accuracy_test})
        if tables is None:
            qmap = twist.plain_query_map(pq.weights)
        else:
            n = q_n[pq.values]
            qmap = _rotated_query_map(n[:, :, None] * pq.weights[:, None, :], n, tables)
        W_Q, _, W_K, _ = (t.double().numpy() for t in arch.qk_weights(model, L))
        for h in range(lay.n_heads):
            summary, _ = twist.head_summary(pq.weights, pk.weights, pq.values, pk.values, W_Q[h], W_K[h], rng,
                                            query_map=qmap)
            out[(L, h)] = {k: summary[k] for k in PROBE_KEYS}
    return out, fits


def _probe_verdict(per_head: list[dict], fits: list[dict]) -> dict:
    """The model's verdict on the probe route: its passing heads, and its best head (the first passing one by
    the probe route's ranking score, else the top-ranked one) with that head's numbers and statement."""
    order = sorted(per_head, key=lambda h: _rank_key(h["probes"]))
    passing = [h["name"] for h in order if h["probes"]["verdict"]["passes"]]
    best = next((h for h in order if h["probes"]["verdict"]["passes"]), order[0])
    b = {"name": best["name"], **best["probes"]}
    return {"passes": bool(passing), "passing_heads": passing, "best_head": best["name"], "best": best["probes"],
            "fits": fits, "statement": "probe route: " + _statement(b, passing, None)}


# ---- the analysis ---------------------------------------------------------------------------------------
def qk_analysis(model, corpus, cfg: QKConfig = QKConfig(), tokenizer=None) -> dict:
    """The QK twist analysis of every head of ``model`` on ``corpus`` (see the module docstring)."""
    if cfg.key_label not in ("width", "line_len"):
        raise UserError(f"key_label must be width or line_len, not {cfg.key_label!r}")
    lay = _check_model(model, tokenizer, corpus)
    rotary = arch.is_rotary(model)
    ids, lab = select_docs(corpus, cfg.split, cfg.n_docs)
    key_values = lab[cfg.key_label]
    (qh_sum, qh_n), (kh_sum, kh_n), att, rows = _collect(model, lay, ids, lab, cfg, key_values, rotary)
    halves = (qh_sum, qh_n, kh_sum, kh_n)  # per half of the documents, for the split-half check
    q_sum, q_n, k_sum, k_n = qh_sum.sum(0), qh_n.sum(0), kh_sum.sum(0), kh_n.sum(0)
    i_values, Qm = _means(q_sum.sum(2), q_n.sum(1), np.arange(len(q_n)), cfg.min_per_value)
    k_values, Km = _means(k_sum, k_n, np.arange(len(k_n)), cfg.min_per_value)
    if len(k_values) < cfg.min_values:
        raise UserError(f"too few lines per width: only {len(k_values)} {cfg.key_label} values have "
                        f">= {cfg.min_per_value} newline tokens in {len(ids)} documents (need "
                        f"{cfg.min_values}); use more documents or a lower --min-per-value")
    if len(i_values) < cfg.min_values:
        raise UserError(f"too few counts: only {len(i_values)} counts have >= {cfg.min_per_value} tokens")

    rng = np.random.default_rng(cfg.seed)
    tables = arch.rotary_tables(model, q_n.shape[1] - 1) if rotary else None
    per_head, mats = [], {}
    for L in range(lay.n_layers):
        W_Q, b_Q, W_K, b_K = (t.double().numpy() for t in arch.qk_weights(model, L))
        qmap = _query_map(q_sum[L], q_n, i_values, Qm[L], tables)
        for h in range(lay.n_heads):
            summary, m = twist.head_summary(Qm[L], Km[L], i_values, k_values, W_Q[h], W_K[h], rng,
                                            query_map=qmap, b_Q=b_Q[h])
            summary.update(layer=L, head=h, name=f"L{L}H{h}")
            S = mean_logits(qmap, Km[L], W_Q[h], b_Q[h], W_K[h], b_K[h])
            summary["comparison"] = twist.score_decomposition(S, i_values, k_values)
            per_head.append(summary)
            mats[(L, h)] = (m, qmap, W_Q[h], b_Q[h], W_K[h], S)
    order = sorted(range(len(per_head)), key=lambda j: _rank_key(per_head[j]))
    for r, j in enumerate(order):
        per_head[j]["rank"] = r

    if cfg.probes:
        by_probe, fits = probe_route(rows, q_n, model, lay, i_values, k_values, tables, cfg)
        for h in per_head:
            h["probes"] = by_probe[(h["layer"], h["head"])]
    del rows

    # measured attention: response curves and the key-side comparison test
    sel = lab["query"] & (lab["prev_nl"] >= 0)
    b, t = np.nonzero(sel)
    remaining, width, count = lab["remaining"][b, t], lab["width"][b, t], lab["count"][b, t]
    prev_len = lab["line_len"][b, lab["prev_nl"][b, t]]
    rem_values = np.arange(0, cfg.max_remaining + 1)
    for s in per_head:
        a = att[:, s["layer"], s["head"]]
        s["response"] = _response(a, remaining, rem_values, cfg.min_per_value)
        s["key_side"] = key_side_test(a, width, count, prev_len, rng)

    # the model's verdict is carried by the first passing head in rank order (else the top-ranked head), and
    # that head is always among those detailed
    passing_order = [j for j in order if per_head[j]["verdict"]["passes"]]
    lead = passing_order[0] if passing_order else order[0]
    shown = order[: cfg.top] + ([lead] if lead not in order[: cfg.top] else [])
    top = [(per_head[j]["layer"], per_head[j]["head"]) for j in shown]
    detail = []
    for L, h in top:
        (m, qmap, W_Q, b_Q, W_K, S) = mats[(L, h)]
        Q_thru, K_thru = qmap(W_Q, b_Q), Km[L] @ W_K
        both = np.concatenate([Qm[L] - Qm[L].mean(0), Km[L] - Km[L].mean(0)])
        thru = np.concatenate([Q_thru - Q_thru.mean(0), K_thru - K_thru.mean(0)])
        detail.append({"name": f"L{L}H{h}", "layer": L, "head": h, "matrices": m, "logits": S,
                       "pca_residual": _pca(both, 3)[1], "pca_qk": _pca(thru, 3)[1]})

    best = per_head[lead]
    passing = [per_head[j]["name"] for j in passing_order]
    _, _, W_Q_b, b_Q_b, W_K_b, _ = mats[(best["layer"], best["head"])]
    stability = split_half(halves, best, (W_Q_b, b_Q_b, W_K_b), i_values, k_values, tables, cfg, len(ids))
    verdict = {
        "passes": bool(passing),
        "passing_heads": passing,
        "best_head": best["name"],  # the first passing head by rank, else the top-ranked head
        "top_ranked_head": per_head[order[0]]["name"],
        "best": {k: best[k] for k in ("qk", "identity", "control", "gain_over_identity",
                                      "gain_over_control", "pc1_share", "score", "verdict", "control_verdict")},
        "identity_worse_than_head": twist._finite(best["gain_over_identity"]) > 0,
        "control_shows_no_alignment": not best["control_verdict"]["passes"],
        "distinct_offsets_among_passing": sorted({per_head[j]["qk"]["median"] for j in order
                                                  if per_head[j]["verdict"]["passes"]}),
        "split_half": stability,
        "thresholds": twist.thresholds(),
        "statement": _statement(best, passing, stability),
        "probes": _probe_verdict(per_head, fits) if cfg.probes else None,
    }
    return {
        "config": cfg, "layout": lay, "n_docs": len(ids),
        "query_frame": "rotated to the previous newline" if rotary else "weights (no positional rotation)",
        "i_values": i_values, "k_values": k_values,
        "heads": [per_head[j] for j in order],
        "top": detail,
        "top_outputs": _top_head_outputs(model, lay, ids, lab, top, cfg),
        "verdict": verdict,
    }


# ---- split-half check -------------------------------------------------------------------------------------
def _half_summary(q_sum, q_n, k_sum, k_n, layer: int, weights, i_values, k_values, tables, cfg: QKConfig) -> dict:
    """One head's :func:`linebreak.qk.twist.head_summary` from one half's sums, over the full analysis' counts and
    widths that keep at least half the tokens a value needs there (``min_per_value // 2``, at least 2)."""
    min_n = max(2, cfg.min_per_value // 2)
    iv, Qm = _means(q_sum[layer][None, i_values].sum(2), q_n[i_values].sum(1), i_values, min_n)
    kv, Km = _means(k_sum[layer][None, k_values], k_n[k_values], k_values, min_n)
    W_Q, b_Q, W_K = weights
    qmap = _query_map(q_sum[layer], q_n, iv, Qm[0], tables)
    summary, _ = twist.head_summary(Qm[0], Km[0], iv, kv, W_Q, W_K, np.random.default_rng(cfg.seed),
                                    query_map=qmap, b_Q=b_Q)
    return summary


def split_half(halves, head: dict, weights, i_values, k_values, tables, cfg: QKConfig, n_docs: int) -> dict:
    """The verdict's head judged again on each half of the documents (even and odd index), each with its own
    random control. A verdict that differs between the halves rests on the sampling noise of the per-value
    means, not on the head; ``holds_on_both_halves`` says whether both halves reach the full verdict."""
    q_sum, q_n, k_sum, k_n = halves
    out = []
    for j in range(2):
        s = _half_summary(q_sum[j], q_n[j], k_sum[j], k_n[j], head["layer"], weights, i_values, k_values,
                          tables, cfg)
        out.append({**{k: s["qk"][k] for k in ("max_cos", "slope", "r2", "median", "edge_fraction")},
                    "gain_over_identity": s["gain_over_identity"], "gain_over_control": s["gain_over_control"],
                    "passes": s["verdict"]["passes"],
                    "fails": [k for k, ok in s["verdict"]["checks"].items() if not ok]})
    full = head["verdict"]["passes"]
    return {"head": head["name"], "n_docs": [(n_docs + 1) // 2, n_docs // 2], "halves": out,
            "holds_on_both_halves": all(h["passes"] == full for h in out)}


def _statement(best: dict, passing: list[str], stability: dict | None) -> str:
    h = best["qk"]
    line = (f"best head {best['name']}: max cos {h['max_cos']:.2f}, slope {h['slope']:.2f}, "
            f"R^2 {h['r2']:.2f}, "
            f"median offset {h['median']:+.1f}, edge {h['edge_fraction']:.2f}, gain over identity "
            f"{best['gain_over_identity']:+.2f}, over control {best['gain_over_control']:+.2f}, PC1 share of "
            f"the query / key side through the head {best['pc1_share']['query']:.2f} / "
            f"{best['pc1_share']['key']:.2f}")
    if stability is not None:
        halves = ", ".join("passes" if h["passes"] else "fails" for h in stability["halves"])
        line += f"; on each half of the documents it {halves}"
    if passing:
        return f"QK twist lines up with the limit in {len(passing)} head(s) ({', '.join(passing)}); {line}"
    failed = [k for k, ok in best["verdict"]["checks"].items() if not ok]
    return f"no head's QK twist lines up with the limit (best fails: {', '.join(failed)}); {line}"
