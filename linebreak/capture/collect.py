"""The capture pass: run a model over a corpus split and keep its activations under TransformerLens names.

One caching hook per (site, layer) through :func:`linebreak.hooks.run.hooks` (plain module hooks, exact
numerics, no model conversion). Tokens of all documents are flattened into rows; ``labels`` holds, per row,
the corpus labels (count, width, remaining, ...) plus ``doc``, ``pos``, ``token`` (id) and ``token_len``.
Memory is bounded: at most ``max_docs`` documents, at most ``max_tokens`` rows (a seeded sample of positions,
chosen before the forward passes and written into preallocated tensors batch by batch), float16 or float32,
and attention patterns for the first ``pattern_docs`` documents only.

    blocks.{L}.hook_resid_pre / hook_resid_mid / hook_resid_post   [N, d_model]
    blocks.{L}.ln1.hook_normalized                                 [N, d_model]   what attention reads
    blocks.{L}.attn.hook_q / hook_k                                [N, n_heads, d_head]  (pre-rotary)
    blocks.{L}.attn.hook_pattern                                   [pattern_docs, n_heads, T, T]
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from linebreak.capture.config import CaptureConfig, parse
from linebreak.capture.store import FORMAT, Activations
from linebreak.hooks import arch, load
from linebreak.hooks.points import hook_name
from linebreak.io import UserError


def sample_rows(n_docs: int, T: int, max_tokens: int, seed: int) -> np.ndarray:
    """Boolean ``[n_docs, T]`` mask of kept positions (all, or a seeded sample of ``max_tokens``)."""
    keep = np.ones((n_docs, T), dtype=bool)
    if n_docs * T > max_tokens:
        keep[:] = False
        idx = np.random.default_rng(seed).choice(n_docs * T, size=max_tokens, replace=False)
        keep.flat[idx] = True
    return keep


def _check_input(model, corpus, cfg: CaptureConfig) -> np.ndarray:
    """The token ids to run, after checking the vocabulary and the context length."""
    ids = corpus.splits[cfg.split].input_ids[: cfg.max_docs]
    T = ids.shape[1]
    load.check_vocab_fits(model, int(ids.max()))
    n_ctx = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", T)
    if T > n_ctx:
        raise UserError(f"documents have {T} tokens but the model's context is {n_ctx}")
    return ids


def capture(model, corpus, cfg: CaptureConfig | None = None, progress: bool = True) -> Activations:
    """Run ``model`` over ``corpus.splits[cfg.split]`` and collect activations and labels (see module doc);
    ``cfg`` defaults to :class:`CaptureConfig` ()."""
    import torch

    from linebreak.hooks.run import hooks, run_with_hooks
    from linebreak.progress import bar

    cfg = cfg or CaptureConfig()
    if cfg.split not in corpus.splits:
        raise UserError(f"corpus has no split {cfg.split!r}; it has {', '.join(corpus.splits)}")
    lay = arch.layout(model)
    load.ensure_eager(model).eval()
    sites, layers = parse(cfg, lay.n_layers)
    if "resid_mid" in sites and arch.parallel_residual(model):
        sites.remove("resid_mid")  # attention and MLP both read resid_pre: there is no mid point
    ids = _check_input(model, corpus, cfg)
    n_docs, T = ids.shape
    keep = sample_rows(n_docs, T, cfg.max_tokens, cfg.seed)
    N = int(keep.sum())
    dtype = getattr(torch, cfg.dtype)
    n_pat = min(cfg.pattern_docs, n_docs) if "pattern" in sites else 0

    shapes = {"resid_pre": (lay.d_model,), "resid_mid": (lay.d_model,), "resid_post": (lay.d_model,),
              "ln1": (lay.d_model,), "q": (lay.n_heads, lay.d_head), "k": (lay.n_heads, lay.d_head)}
    acts = {hook_name(s, L): torch.empty((N, *shapes[s]), dtype=dtype)
            for s in sites if s != "pattern" for L in layers}
    if n_pat:
        acts |= {hook_name("pattern", L): torch.empty((n_pat, lay.n_heads, T, T), dtype=dtype)
                 for L in layers}

    state = {"sel": None, "row": 0, "doc": 0}  # kept positions of the current batch; where its rows go

    def store(x, name):  # x [B, T, ...]: keep the selected positions
        rows = x[state["sel"]]
        acts[name][state["row"]: state["row"] + len(rows)] = rows.to(dtype)

    def store_pattern(weights, name):  # weights [B, H, T, T]: keep the first n_pat documents
        take = min(n_pat - state["doc"], len(weights))
        if take > 0:
            acts[name][state["doc"]: state["doc"] + take] = weights[:take].to(dtype)

    fwd = [(hook_name(s, L), store) for L in layers for s in sites if s != "pattern"]
    fwd += [(hook_name("pattern", L), store_pattern) for L in layers] if n_pat else []
    with hooks(model, fwd):
        for start in bar(range(0, n_docs, cfg.batch_size), desc="capture", unit="batch", disable=not progress):
            sl = slice(start, start + cfg.batch_size)
            state["sel"] = torch.from_numpy(keep[sl])
            state["doc"] = start
            run_with_hooks(model, torch.from_numpy(ids[sl]), use_cache=False)
            state["row"] += int(keep[sl].sum())

    lab = corpus.labels(cfg.split)
    labels = {k: np.asarray(v[: n_docs])[keep] for k, v in lab.items()}
    doc, pos = np.nonzero(keep)
    labels |= {"doc": doc.astype(np.int64), "pos": pos.astype(np.int64), "token": ids[keep].astype(np.int64)}
    labels.setdefault("token_len", corpus.token_lengths[ids[keep]].astype(np.int64))  # per position if known
    meta = {"format": FORMAT, "config": asdict(cfg), "arch": asdict(lay),
            "n_layers": lay.n_layers, "layers": layers, "sites": sites, "n_rows": N, "n_docs": n_docs,
            "seq_len": T, "pattern_docs": list(range(n_pat)),
            "corpus": {"path": str(getattr(corpus, "path", "")),
                       "fingerprint": corpus.meta.get("fingerprint")},
            "newline_id": int(corpus.newline_id), "bos_id": int(corpus.bos_id)}
    return Activations(acts, labels, meta)
