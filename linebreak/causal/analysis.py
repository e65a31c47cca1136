"""``linebreak causal``: is the count / boundary machinery *used*? Ablations, patching, an insertion sweep.

All checks measure next-token cross-entropy split into positions whose next token is the newline
("newline loss") and all other positions ("other loss"), on the first ``n_docs`` documents of a split:

1. **Head ablation.** Zero the top boundary head's output (its slice of the output projection's input), then
   the top ``top`` heads together, then, as the control, every other head of the top head's layer one at a
   time. A boundary head should raise the newline loss far more than the other loss, and more than a random
   head of its layer; all heads of the layer together give the scale.
   **Key ablation**: for the QK-top and the measured boundary head, set the head's keys at newline tokens
   to their mean over newlines, or to the key of a random other newline, so it can no longer read the width
   there, or to the key of a random newline ending a line of the same length (the width kept, the rest
   changed), and compare each newline-loss rise with removing the head (``key_share``).
2. **Count-subspace ablation.** At the residual stream entering the top head's layer (``hook_resid_pre``),
   project out the top-``k`` PCA subspace of the per-count means (zero ablation of that subspace, as in the
   paper); compare with ``n_random`` random ``k``-dimensional subspaces.
3. **Count patching.** On every non-initial word token, replace the residual's count mean by another's:
   ``x' = x - mu[c] + mu[c + delta]``; the probability given to a newline next should rise with ``delta``.
4. **Insertion sweep** (the paper's "visual illusions"). Insert a short token string in the middle of a line
   and read the newline probability at the token that ended the line before; alongside, the attention the
   top heads give the inserted tokens. ``<bos>`` adds no characters (a pure distractor); a real newline is the
   positive control (it truly restarts the line); word strings add characters.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from linebreak.hooks import arch, heads
from linebreak.io import UserError
from linebreak.qk.analysis import _check_model, response_range, select_docs


@dataclass(frozen=True)
class CausalConfig:
    split: str = field(default="validation", metadata={"help": "corpus split to evaluate on"})
    n_docs: int = field(default=64, metadata={"help": "documents per evaluation"})
    batch_size: int = 16
    top: int = field(default=3, metadata={"help": "top heads ablated together"})
    subspace_dim: int = field(default=6, metadata={"help": "dimensions of the count subspace ablated"})
    n_random: int = field(default=3, metadata={"help": "random subspaces of the same dimension (control)"})
    patch_deltas: str = field(default="-8,-4,-2,0,2,4,8", metadata={"help": "count shifts for patching"})
    patch_passes: int = field(default=4, metadata={"help": "patching passes (one patched token per document each)"})
    patch_layer: int = field(default=-1, metadata={
        "help": "layer whose resid_pre is patched; -1: the last layer, where the break decision is read out"})
    min_per_value: int = field(default=8, metadata={"help": "tokens needed for a count mean"})
    n_strings: int = field(default=12, metadata={"help": "random word strings in the insertion sweep"})
    n_lines: int = field(default=48, metadata={"help": "lines the insertion sweep edits"})
    seed: int = 0




def _eval(model, ids: np.ndarray, newline_id: int, batch_size: int, p_at=None) -> dict:
    """Newline and other loss over ``ids`` under whatever hooks are active; optionally P(newline) at ``p_at``
    (a bool mask [n, T]) averaged."""
    tot = {"nl_sum": 0.0, "nl_n": 0, "other_sum": 0.0, "other_n": 0}
    p_sum, p_n = 0.0, 0
    for s, e in heads.batches(len(ids), batch_size):
        x = heads.as_tensor(ids[s:e])
        out = heads.forward(model, x, attention=False)
        r = heads.newline_loss(out["logits"], x, newline_id)
        for k in tot:
            tot[k] += r[k]
        if p_at is not None:
            m = p_at[s:e, :-1]
            p_sum += float(r["p_newline"].numpy()[m].sum())
            p_n += int(m.sum())
    res = {"newline_loss": tot["nl_sum"] / max(tot["nl_n"], 1),
           "other_loss": tot["other_sum"] / max(tot["other_n"], 1),
           "loss": (tot["nl_sum"] + tot["other_sum"]) / max(tot["nl_n"] + tot["other_n"], 1)}
    if p_at is not None:
        res["p_newline"] = p_sum / max(p_n, 1)
    return res


def _delta(base: dict, new: dict) -> dict:
    d_nl, d_ot = new["newline_loss"] - base["newline_loss"], new["other_loss"] - base["other_loss"]
    return {**new, "d_newline": d_nl, "d_other": d_ot,
            "ratio": d_nl / d_ot if abs(d_ot) > 1e-9 else float("inf") if d_nl > 0 else float("nan")}


def head_ablations(model, ids, newline_id, ranked: list[tuple[int, int]], cfg: CausalConfig, base) -> dict:
    lay = arch.layout(model)
    L0, h0 = ranked[0]

    def run(layer, hs):
        with heads.ablate_heads(model, layer, hs):
            return _delta(base, _eval(model, ids, newline_id, cfg.batch_size))

    top1 = run(L0, [h0])
    others = {f"L{L0}H{h}": run(L0, [h]) for h in range(lay.n_heads) if h != h0}
    by_layer: dict[int, list[int]] = {}
    for L, h in ranked[: cfg.top]:
        by_layer.setdefault(L, []).append(h)
    with ExitStack() as stack:
        for L, hs in by_layer.items():
            stack.enter_context(heads.ablate_heads(model, L, hs))
        top_n = _delta(base, _eval(model, ids, newline_id, cfg.batch_size))
    whole = run(L0, range(lay.n_heads))
    rng = np.random.default_rng(cfg.seed)
    random_name = sorted(others)[int(rng.integers(len(others)))] if others else None
    other_d = [v["d_newline"] for v in others.values()]
    rand_d = others[random_name]["d_newline"] if random_name is not None else float("nan")
    return {
        "top_head": f"L{L0}H{h0}", "top": top1, "top_n_heads": [f"L{L}H{h}" for L, h in ranked[: cfg.top]],
        "top_n": top_n, "same_layer_others": others, "random_head": random_name,
        "random": others.get(random_name), "all_heads_of_layer": whole,
        "top_beats_random": bool(top1["d_newline"] > rand_d),
        "top_beats_every_other_in_layer": bool(other_d and top1["d_newline"] > max(other_d)),
        "top_newline_specific": bool(top1["d_newline"] > 0
                                     and top1["d_newline"] > 2 * max(top1["d_other"], 0)),
    }


def resample_rows(k, mask, pool, gen, groups=None, pool_groups=None):
    """``k [..., d]`` with every row where ``mask`` holds replaced by a row of ``pool [N, d]`` drawn uniformly
    (``gen``: a seeded torch generator); the other rows unchanged. With ``groups`` (same shape as ``mask``) and
    ``pool_groups [N]``, each row is drawn from the pool rows of its own group (a row whose group the pool
    lacks keeps its own value)."""
    import torch

    k = k.clone()
    if groups is None:
        k[mask] = pool[torch.randint(len(pool), (int(mask.sum()),), generator=gen)].to(k)
        return k
    for g in torch.unique(groups[mask]).tolist():
        rows, choices = mask & (groups == g), torch.nonzero(pool_groups == g)[:, 0]
        if len(choices):
            k[rows] = pool[choices[torch.randint(len(choices), (int(rows.sum()),), generator=gen)]].to(k)
    return k


def _line_lengths(x, newline_id: int, token_lengths: np.ndarray):
    """The length of the line each newline of ``x [B, T]`` ends (-1 elsewhere), as a tensor like ``x``."""
    import torch

    from linebreak.corpus.labels import labels_for_split

    ids = x.numpy()
    lab = labels_for_split(ids, np.zeros(len(ids)), token_lengths, newline_id)
    return torch.as_tensor(lab["line_len"])


def key_ablation(model, ids, newline_id: int, layer: int, head: int, cfg: CausalConfig, base: dict,
                 token_lengths: np.ndarray) -> dict:
    """Take away what one head's keys at newline tokens say about their line, three ways: ``mean`` sets each
    to the mean newline key of ``ids``; ``resample`` to the key of a newline drawn at random from ``ids``
    (seeded; a real key, so the head stays on its input distribution, but one from another line, mostly
    another document); ``resample_same_length`` to the key of a random newline that ends a line of the *same
    length* (everything but the width changes). The head still attends; after the first two it can no longer
    read the width of the line a newline ends, after the third it can. A head that compares count with width at
    the key (a twist, or subtraction with a key-side width) loses its comparison to the first two and keeps
    it under the third; a head gated by what its query knows loses nothing. Returns the loss deltas against
    ``base``."""
    import torch

    pool: list = []
    pool_len: list = []

    def collect(k, x):
        m = x == newline_id
        pool.append(k[m].clone())
        pool_len.append(_line_lengths(x, newline_id, token_lengths)[m])
        return k

    with heads.edit_keys(model, layer, head, collect):
        for s, e in heads.batches(len(ids), cfg.batch_size):
            heads.forward(model, heads.as_tensor(ids[s:e]), attention=False)
    keys, key_len = torch.cat(pool), torch.cat(pool_len)
    mean = keys.double().mean(0).float()
    gen = torch.Generator().manual_seed(cfg.seed)

    def frozen(k, x):
        return torch.where((x == newline_id)[..., None], mean.to(k), k)

    def resampled(k, x):
        return resample_rows(k, x == newline_id, keys, gen)

    def same_length(k, x):
        return resample_rows(k, x == newline_id, keys, gen, _line_lengths(x, newline_id, token_lengths), key_len)

    out = {}
    for name, fn in (("mean", frozen), ("resample", resampled), ("resample_same_length", same_length)):
        with heads.edit_keys(model, layer, head, fn):
            out[name] = _delta(base, _eval(model, ids, newline_id, cfg.batch_size))
    return out


def key_ablations(model, ids, newline_id: int, removed: dict, cfg: CausalConfig, base: dict,
                  token_lengths: np.ndarray, comparisons: dict | None = None) -> dict:
    """:func:`key_ablation` of each head of ``removed`` (``{(layer, head): newline-loss rise when the head is
    removed}``), beside that rise: ``key_share`` = the rise from each key ablation over the rise from removing
    the head (about 1 for a head whose effect runs through the width at the key; nan when removing the head
    does not raise it). The head's logit split from the QK stage (``comparisons``: name -> ``comparison``) is
    copied beside it. Keyed by head name."""
    comparisons = comparisons or {}
    out = {}
    for (L, h), d_head in removed.items():
        name = f"L{L}H{h}"
        k = key_ablation(model, ids, newline_id, L, h, cfg, base, token_lengths)
        out[name] = {**k, "head_d_newline": d_head,
                     "key_share": {m: k[m]["d_newline"] / d_head if d_head > 1e-9 else float("nan") for m in k},
                     "comparison": comparisons.get(name)}
    return out


def boundary_ranking(qk_result: dict) -> list[tuple[int, int]]:
    """Heads ranked by their *measured* boundary behaviour: the range of their attention to the previous
    newline across characters remaining (response curve), largest first. The QK ranking says which heads'
    weights twist; this one says which heads actually switch attention as the line fills."""
    hs = sorted(qk_result["heads"], key=response_range, reverse=True)
    return [(int(h["layer"]), int(h["head"])) for h in hs]


def count_means(model, ids, lab, layer: int, cfg: CausalConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-count means of ``hook_resid_pre`` of ``layer`` over non-initial word tokens: (counts, [V, d])."""
    d = arch.layout(model).d_model
    n_c = int(lab["count"].max()) + 1
    sums, ns = np.zeros((n_c, d)), np.zeros(n_c)
    for s, e in heads.batches(len(ids), cfg.batch_size):
        out = heads.forward(model, heads.as_tensor(ids[s:e]), resid_pre=(layer,), attention=False)
        m, c = lab["query"][s:e], lab["count"][s:e]
        np.add.at(sums, c[m], out["resid_pre"][layer].double().numpy()[m])
        np.add.at(ns, c[m], 1)
    keep = ns >= cfg.min_per_value
    return np.nonzero(keep)[0], sums[keep] / ns[keep, None]


def _group_means(X: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
    sums = np.zeros((n, X.shape[1]))
    np.add.at(sums, g, X)
    return sums / np.maximum(np.bincount(g, minlength=n), 1)[:, None]


def count_effects(model, ids, lab, layer: int, cfg: CausalConfig, iters: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The count representation *with the width held fixed*: the count main effects ``b[c]`` of an additive
    fit ``x ~ a[width] + b[count]`` to ``hook_resid_pre`` of ``layer`` over non-initial word tokens
    (backfitting). Plain per-count means mix in width, because long counts occur only in wide documents: a
    patch along them would move the model's width estimate with its count. Returns (counts, [V, d])."""
    out_rows, c_rows, w_rows = [], [], []
    for s, e in heads.batches(len(ids), cfg.batch_size):
        out = heads.forward(model, heads.as_tensor(ids[s:e]), resid_pre=(layer,), attention=False)
        m = lab["query"][s:e]
        out_rows.append(out["resid_pre"][layer].double().numpy()[m])
        c_rows.append(lab["count"][s:e][m])
        w_rows.append(lab["width"][s:e][m])
    X, c, w = np.concatenate(out_rows), np.concatenate(c_rows), np.concatenate(w_rows)
    n_c, n_w = int(c.max()) + 1, int(w.max()) + 1
    a = np.zeros((n_w, X.shape[1]))
    for _ in range(iters):
        b = _group_means(X - a[w], c, n_c)
        a = _group_means(X - b[c], w, n_w)
    keep = np.bincount(c, minlength=n_c) >= cfg.min_per_value
    return np.nonzero(keep)[0], b[keep]


def project_out(basis):
    """``x -> x - (x B) B^T`` for an orthonormal ``basis [d, k]`` (zero-ablation of that subspace)."""
    import torch

    B = torch.as_tensor(basis, dtype=torch.float32)
    return lambda x: x - (x @ B.to(x)) @ B.to(x).T


def subspace_ablation(model, ids, newline_id, layer, means, cfg: CausalConfig, base) -> dict:
    k = min(cfg.subspace_dim, len(means) - 1, means.shape[1])
    C = means - means.mean(0)
    _, S, Vt = np.linalg.svd(C, full_matrices=False)
    basis = Vt[:k].T
    with heads.edit_resid_pre(model, layer, project_out(basis)):
        top = _delta(base, _eval(model, ids, newline_id, cfg.batch_size))
    rng = np.random.default_rng(cfg.seed)
    rand = []
    for _ in range(cfg.n_random):
        Qr, _ = np.linalg.qr(rng.standard_normal((means.shape[1], k)))
        with heads.edit_resid_pre(model, layer, project_out(Qr)):
            rand.append(_delta(base, _eval(model, ids, newline_id, cfg.batch_size)))
    mean_rand = {key: float(np.mean([r[key] for r in rand])) for key in ("d_newline", "d_other")}
    return {"layer": layer, "dim": k, "variance_explained": float((S[:k] ** 2).sum() / (S**2).sum()),
            "count_subspace": top, "random_subspaces": rand, "random_mean": mean_rand,
            "beats_random_on_newline": bool(top["d_newline"] > mean_rand["d_newline"])}


def count_patching(model, ids, lab, newline_id, layer, counts, means, cfg: CausalConfig) -> dict:
    """Replace the count representation at one word token per document, ``x' = x - mu[c] + mu[c + delta]``
    (``mu`` from :func:`count_effects`: the count effect with the width held fixed),
    and read P(newline) at that same token. Only that token is patched (as the paper patched the last
    tokens of its prompt): patching every token would also lengthen the earlier lines the model reads the
    width from. Each of ``patch_passes`` passes patches a different (seeded) token per document."""
    import torch

    deltas = [int(x) for x in cfg.patch_deltas.split(",") if x.strip()]
    mu = {int(c): m for c, m in zip(counts, means)}
    rng = np.random.default_rng(cfg.seed)
    # candidates: later-line word tokens whose count and every count + delta have a mean
    ok = lab["query"] & (lab["line_index"] >= 1) & np.isin(lab["count"], counts)
    for d in deltas:
        ok &= np.isin(lab["count"] + d, counts)
    picks = []  # (doc, position) per pass
    for _ in range(cfg.patch_passes):
        docs = [b for b in range(len(ids)) if ok[b].any()]
        picks.append([(b, int(rng.choice(np.nonzero(ok[b])[0]))) for b in docs])
    curve = []
    for delta in deltas:
        p_all = []
        for pick in picks:
            if not pick:
                continue
            b, t = (np.array(x) for x in zip(*pick))
            shift = np.zeros(ids.shape + (means.shape[1],), dtype=np.float32)
            shift[b, t] = np.stack([mu[int(c) + delta] - mu[int(c)] for c in lab["count"][b, t]])
            at = np.zeros(ids.shape, dtype=bool)
            at[b, t] = True
            for s, e in heads.batches(len(ids), cfg.batch_size):
                sh = torch.as_tensor(shift[s:e])
                with heads.edit_resid_pre(model, layer, lambda x, sh=sh: x + sh.to(x)):
                    out = heads.forward(model, heads.as_tensor(ids[s:e]), attention=False)
                p_all.append(torch.softmax(out["logits"], -1)[..., newline_id].numpy()[at[s:e]])
        p = np.concatenate(p_all) if p_all else np.array([])
        curve.append({"delta": delta, "p_newline": float(p.mean()) if len(p) else float("nan"), "n": len(p)})
    from scipy.stats import spearmanr

    ps = [c["p_newline"] for c in curve]
    rho = float(spearmanr(deltas, ps).statistic) if len(deltas) >= 3 else float("nan")
    steps = np.diff(ps)
    return {"layer": layer, "curve": curve, "spearman": rho,
            "monotone_fraction": float((steps > 0).mean()) if len(steps) else float("nan")}


def _insertion_sites(ids, lab, n_lines: int, max_insert: int, rng) -> list[tuple[int, int, int]]:
    """(doc, insert-after position, position of the last word before the newline) for lines from the third
    on with at least 4 words, ending early enough that ``max_insert`` more tokens still fit."""
    sites = []
    T = ids.shape[1]
    for d in range(len(ids)):
        nl = np.nonzero(lab["is_newline"][d])[0]
        for a, b in zip(nl[:-1], nl[1:]):
            if lab["line_index"][d, b] >= 3 and b - a - 1 >= 4 and b + max_insert < T:
                sites.append((d, int(a + (b - a) // 2), int(b - 1)))
    if not sites:
        return []
    pick = rng.choice(len(sites), size=min(n_lines, len(sites)), replace=False)
    return [sites[i] for i in sorted(pick)]


def insertion_sweep(model, corpus, ids, lab, ranked, cfg: CausalConfig) -> dict:
    import torch

    rng = np.random.default_rng(cfg.seed)
    lengths = corpus.token_lengths
    spaced = [i for i in range(len(lengths)) if lengths[i] > 1 and corpus.tokenizer.convert_ids_to_tokens(i)
              .startswith((" ", "Ġ", "▁"))]
    strings = {"<bos>": [corpus.bos_id], "<bos><bos>": [corpus.bos_id] * 2,
               "\\n (control)": [corpus.newline_id]}
    for _ in range(cfg.n_strings):
        toks = [int(t) for t in rng.choice(spaced, size=int(rng.integers(1, 3)))] if spaced else []
        if toks:
            strings[corpus.tokenizer.decode(toks)] = toks
    sites = _insertion_sites(ids, lab, cfg.n_lines, 2, rng)
    if not sites:
        return {"sites": 0, "strings": []}
    top = ranked[: cfg.top]

    def run(seqs, q_pos, ins_pos):
        x = torch.as_tensor(np.stack(seqs))
        out = heads.forward(model, x)
        p = torch.softmax(out["logits"], -1)[..., corpus.newline_id].numpy()
        rows = np.arange(len(seqs))
        p_q = p[rows, q_pos]
        att_ins = []
        for L, h in top:
            pat = out["pattern"][L][:, h].numpy()
            att_ins.append([pat[r, q_pos[r], ins_pos[r]].sum() if len(ins_pos[r]) else 0.0 for r in rows])
        return p_q, np.mean(att_ins, axis=0)

    base_seqs = [ids[d] for d, _, _ in sites]
    q0 = np.array([q for _, _, q in sites])
    p_base, _ = run(base_seqs, q0, [[]] * len(sites))
    rows = []
    for name, toks in strings.items():
        m = len(toks)
        seqs = [np.concatenate([ids[d][: a + 1], toks, ids[d][a + 1: ids.shape[1] - m]]) for d, a, _ in sites]
        ins = [list(range(a + 1, a + 1 + m)) for _, a, _ in sites]
        p_new, att = run(seqs, q0 + m, ins)
        rows.append({"string": name, "n_tokens": m, "n_chars": int(lengths[toks].sum()),
                     "p_newline_before": float(p_base.mean()), "p_newline_after": float(p_new.mean()),
                     "delta": float((p_new - p_base).mean()), "attention_to_insert": float(att.mean())})
    d = np.array([r["delta"] for r in rows])
    a = np.array([r["attention_to_insert"] for r in rows])
    ok = len(rows) >= 3 and d.std() > 0 and a.std() > 0
    corr = float(np.corrcoef(np.abs(d), a)[0, 1]) if ok else float("nan")
    return {"sites": len(sites), "heads": [f"L{L}H{h}" for L, h in top], "strings": rows,
            "corr_abs_delta_vs_attention": corr}


def causal_checks(model, corpus, qk_result: dict, cfg: CausalConfig = CausalConfig(), tokenizer=None) -> dict:
    """All four causal checks for the heads ranked by ``qk_result`` (:func:`linebreak.qk.analysis.qk_analysis`)."""
    from linebreak.progress import bar

    _check_model(model, tokenizer, corpus)
    ranked = [(int(h["layer"]), int(h["head"])) for h in qk_result.get("heads", [])]
    if not ranked:
        raise UserError("the QK result ranks no heads; run `linebreak qk` first")
    ids, lab = select_docs(corpus, cfg.split, cfg.n_docs)
    nl = corpus.newline_id
    layer = ranked[0][0]
    steps = bar(total=4, desc="causal", leave=False)
    base = _eval(model, ids, nl, cfg.batch_size)
    res = {"config": cfg, "n_docs": len(ids), "baseline": base}
    res["head_ablation"] = head_ablations(model, ids, nl, ranked, cfg, base)
    boundary = boundary_ranking(qk_result)
    res["boundary_head_ablation"] = head_ablations(model, ids, nl, boundary, cfg, base)
    removed = {boundary[0]: res["boundary_head_ablation"]["top"]["d_newline"],  # the measured boundary head first
               ranked[0]: res["head_ablation"]["top"]["d_newline"]}
    res["key_ablation"] = key_ablations(model, ids, nl, removed, cfg, base, corpus.token_lengths,
                                        {h["name"]: h.get("comparison") for h in qk_result["heads"]})
    steps.update()
    counts, means = count_means(model, ids, lab, layer, cfg)
    if len(counts) < 3:
        raise UserError(f"too few counts with >= {cfg.min_per_value} tokens for the count subspace")
    res["subspace_ablation"] = subspace_ablation(model, ids, nl, layer, means, cfg, base)
    steps.update()
    p_layer = arch.check_layer(model, cfg.patch_layer if cfg.patch_layer >= 0 else arch.layout(model).n_layers - 1)
    p_counts, p_means = count_effects(model, ids, lab, p_layer, cfg)
    res["patching"] = count_patching(model, ids, lab, nl, p_layer, p_counts, p_means, cfg)
    steps.update()
    res["insertion"] = insertion_sweep(model, corpus, ids, lab, ranked, cfg)
    steps.update()
    steps.close()
    return res
