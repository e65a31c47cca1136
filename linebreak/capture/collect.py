"""The capture pass: run a model over a corpus split and keep its activations under TransformerLens names.

One caching hook per (site, layer) through :func:`linebreak.hooks.run.hooks` (plain module hooks, exact
numerics, no model conversion). Tokens of all documents are flattened into rows; ``labels`` holds, per row,
the corpus labels (count, width, remaining, ...) plus ``doc``, ``pos``, ``token`` (id) and ``token_len``.
Memory is bounded: at most ``max_docs`` documents, at most ``max_tokens`` rows (a seeded sample of positions,
chosen before the forward passes and written into preallocated tensors batch by batch), only the ``layers``
asked for, float16 or float32 (``store_dtype``), attention patterns for the first ``pattern_docs`` documents
only, and all of it at most ``max_gb`` (refused before the model runs, with what to cut). The model runs in its
own ``dtype`` on its ``device`` (:mod:`linebreak.hooks.device`); each batch's kept rows are copied to the CPU
at once, so the device holds one batch's activations, never the capture.

    blocks.{L}.hook_resid_pre / hook_resid_mid / hook_resid_post   [N, d_model]
    blocks.{L}.ln1.hook_out                                        [N, d_model]   what attention reads
    blocks.{L}.ln1.hook_normalized / hook_scale                    [N, d_model] / [N, 1]  (asked for only)
    blocks.{L}.attn.hook_q / hook_k                                [N, n_heads | n_kv_heads, d_head]  (pre-rotary)
    blocks.{L}.attn.hook_q_normed / hook_k_normed                  the same, after the q/k norm (asked for only)
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


def planned_bytes(shapes: dict, n_rows: int, n_pattern_docs: int, T: int, n_heads: int, n_layers: int,
                  itemsize: int, n_shared: int = 0) -> int:
    """Bytes the preallocated store takes: ``n_rows`` rows of each ``shapes`` site and ``n_pattern_docs``
    patterns ``[n_heads, T, T]``, in each of ``n_layers`` layers, less the ``n_shared`` block inputs kept once as
    the previous block's output (:func:`shared_inputs`)."""
    per_row = sum(int(np.prod(s)) for s in shapes.values())
    shared = n_shared * int(np.prod(shapes.get("resid_pre", 0)))
    return itemsize * (n_layers * (n_rows * per_row + n_pattern_docs * n_heads * T * T) - n_rows * shared)


def shared_inputs(shapes: dict, layers: list[int]) -> dict[str, str]:
    """``{blocks.L.hook_resid_pre: blocks.L-1.hook_resid_post}`` where both are kept: a block's input is the
    previous block's output, the same tensor, so it is kept once under both names."""
    if "resid_pre" not in shapes or "resid_post" not in shapes:
        return {}
    return {hook_name("resid_pre", L): hook_name("resid_post", L - 1) for L in layers if L - 1 in layers}


def _check_budget(nbytes: int, cfg: CaptureConfig, n_layers: int) -> None:
    if nbytes > cfg.max_gb * 1e9:
        raise UserError(f"this capture would hold {nbytes / 1e9:.1f} GB of activations ({n_layers} layers), over "
                        f"--max-gb {cfg.max_gb:g}: choose --layers, fewer --sites, a lower --max-tokens or "
                        f"--store-dtype float16 (or raise --max-gb)")


def points_of_model(model, sites: list[str]) -> tuple[list[str], dict[str, str]]:
    """``sites`` less the points ``model`` does not have, and ``{dropped site: why}``. A model whose attention
    reads ``resid_pre`` (post-norm OLMo-2) has no ``ln1``: ``resid_pre`` is captured in its place."""
    why = {}
    if arch.parallel_residual(model):
        why["resid_mid"] = "a parallel block: attention and MLP both read resid_pre"
    if arch.attention_input_site(model) == "resid_pre":
        for s in ("ln1", "ln1_normalized", "ln1_scale"):
            why[s] = "no norm before attention (post-norm block): attention reads resid_pre"
    if not arch.has_qk_norm(model):
        why |= {s: "no q/k norm: attention scores hook_q and hook_k" for s in ("q_normed", "k_normed")}
    kept = [s for s in sites if s not in why]
    if "ln1" in sites and "ln1" in why and "resid_pre" not in kept:
        kept.insert(0, "resid_pre")
    return kept, {s: w for s, w in why.items() if s in sites}


def capture(model, corpus, cfg: CaptureConfig | None = None, progress: bool = True, also=()) -> Activations:
    """Run ``model`` over ``corpus.splits[cfg.split]`` and collect activations and labels (see module doc);
    ``cfg`` defaults to :class:`CaptureConfig` (). ``also`` are further :class:`~linebreak.hooks.run.Reader` s
    of the same documents that ride the same forward pass (the study's qk pass,
    :func:`linebreak.qk.analysis.qk_pass`); the capture's numbers do not depend on them."""
    from linebreak.hooks.run import read_pass

    cfg = cfg or CaptureConfig()
    reader, finish, ids = capture_reader(model, corpus, cfg)
    read_pass(model, ids, cfg.batch_size, [reader, *also], desc="capture", progress=progress)
    return finish()


def capture_reader(model, corpus, cfg: CaptureConfig):
    """The capture as a reader of a forward pass: ``(reader, finish, ids)``, where ``finish()`` returns the
    :class:`Activations` once the pass over ``ids`` has run (:func:`capture` runs it)."""
    import torch

    from linebreak.hooks.run import Reader

    if cfg.split not in corpus.splits:
        raise UserError(f"corpus has no split {cfg.split!r}; it has {', '.join(corpus.splits)}")
    lay = arch.layout(model)
    load.ensure_eager(model).eval()
    sites, layers = parse(cfg, lay.n_layers)
    sites, dropped = points_of_model(model, sites)
    ids = _check_input(model, corpus, cfg)
    n_docs, T = ids.shape
    keep = sample_rows(n_docs, T, cfg.max_tokens, cfg.seed)
    N = int(keep.sum())
    dtype = getattr(torch, cfg.store_dtype)
    n_pat = min(cfg.pattern_docs, n_docs) if "pattern" in sites else 0

    d, q_shape, k_shape = (lay.d_model,), (lay.n_heads, lay.d_head), (lay.n_kv_heads, lay.d_head)
    shapes = {"resid_pre": d, "resid_mid": d, "resid_post": d, "ln1": d, "ln1_normalized": d, "ln1_scale": (1,),
              "q": q_shape, "k": k_shape, "q_normed": q_shape, "k_normed": k_shape}
    shapes = {s: shapes[s] for s in sites if s != "pattern"}
    same = shared_inputs(shapes, layers)
    _check_budget(planned_bytes(shapes, N, n_pat, T, lay.n_heads, len(layers), dtype.itemsize, len(same)), cfg,
                  len(layers))
    device = load.model_device(model)
    own = {hook_name(s, L): torch.empty((N, *shape), dtype=dtype) for s, shape in shapes.items() for L in layers
           if hook_name(s, L) not in same}
    acts = {hook_name(s, L): own[same.get(hook_name(s, L), hook_name(s, L))] for s in shapes for L in layers}
    if n_pat:
        acts |= {hook_name("pattern", L): torch.empty((n_pat, lay.n_heads, T, T), dtype=dtype)
                 for L in layers}

    state = {"sel": None, "row": 0, "doc": 0}  # kept positions of the current batch; where its rows go

    def store(x, name):  # x [B, T, ...] on the model's device: keep the selected positions, on the CPU
        rows = x[state["sel"]]
        acts[name][state["row"]: state["row"] + len(rows)] = rows.detach().to("cpu", dtype)

    def store_pattern(weights, name):  # weights [B, H, T, T]: keep the first n_pat documents
        take = min(n_pat - state["doc"], len(weights))
        if take > 0:
            acts[name][state["doc"]: state["doc"] + take] = weights[:take].detach().to("cpu", dtype)

    def begin(start, end):  # the batch's kept positions, and where its rows go (after the previous batch's)
        state["row"] = int(keep[:start].sum())
        state["sel"] = torch.from_numpy(keep[start:end]).to(device)
        state["doc"] = start

    fwd = [(hook_name(s, L), store) for L in layers for s in sites if s != "pattern" and hook_name(s, L) not in same]
    fwd += [(hook_name("pattern", L), store_pattern) for L in layers] if n_pat else []

    def finish() -> Activations:
        lab = corpus.labels(cfg.split)
        labels = {k: np.asarray(v[: n_docs])[keep] for k, v in lab.items()}
        doc, pos = np.nonzero(keep)
        labels |= {"doc": doc.astype(np.int64), "pos": pos.astype(np.int64), "token": ids[keep].astype(np.int64)}
        labels.setdefault("token_len", corpus.token_lengths[ids[keep]].astype(np.int64))  # per position if known
        meta = {"format": FORMAT, "config": asdict(cfg), "arch": asdict(lay),
                "n_layers": lay.n_layers, "layers": layers, "sites": sites, "n_rows": N, "n_docs": n_docs,
                "attention_input_site": arch.attention_input_site(model), "dropped_sites": dropped,
                "seq_len": T, "pattern_docs": list(range(n_pat)),
                "corpus": {"path": str(getattr(corpus, "path", "")),
                           "fingerprint": corpus.meta.get("fingerprint")},
                "newline_id": int(corpus.newline_id), "bos_id": int(corpus.bos_id)}
        return Activations(acts, labels, meta)

    return Reader(fwd, begin, n_docs), finish, ids
