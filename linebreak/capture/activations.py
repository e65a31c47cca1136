"""Run a model over a corpus split and keep its activations under TransformerLens names, with token labels.

Plain forward hooks on the Hugging Face modules (exact numerics; no model conversion), keyed by the names
every interpretability reader knows (docs/architecture.md, "Activations"):

    blocks.{L}.hook_resid_pre / hook_resid_mid / hook_resid_post   [N, d_model]
    blocks.{L}.ln1.hook_normalized                                 [N, d_model]   what attention reads
    blocks.{L}.attn.hook_q / hook_k                                [N, n_heads, d_head]  (pre-rotary)
    blocks.{L}.attn.hook_pattern                                   [pattern_docs, n_heads, T, T]

Tokens of all documents are flattened into rows; ``labels`` holds, per row, the corpus labels (count, width,
remaining, ...) plus ``doc``, ``pos``, ``token`` (id) and ``token_len``. Memory is bounded: at most
``max_docs`` documents, at most ``max_tokens`` rows (a seeded sample of positions, chosen before the forward
passes and written into preallocated tensors batch by batch), float16 or float32, and attention patterns
for the first ``pattern_docs`` documents only.

Saved as ``activations.safetensors`` (activations), ``labels.safetensors`` (label arrays) and
``capture.json`` (settings, shapes, label ranges).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from linebreak.hooks import arch
from linebreak.io import UserError, load_json, load_tensors, save_json, save_tensors

SITES = ("resid_pre", "resid_mid", "resid_post", "ln1", "q", "k", "pattern")
MARKER = "capture.json"


def hook_name(site: str, layer: int) -> str:
    """TransformerLens name of ``site`` at ``layer`` (e.g. ``("q", 2) -> "blocks.2.attn.hook_q"``)."""
    return {"resid_pre": f"blocks.{layer}.hook_resid_pre", "resid_mid": f"blocks.{layer}.hook_resid_mid",
            "resid_post": f"blocks.{layer}.hook_resid_post", "ln1": f"blocks.{layer}.ln1.hook_normalized",
            "q": f"blocks.{layer}.attn.hook_q", "k": f"blocks.{layer}.attn.hook_k",
            "pattern": f"blocks.{layer}.attn.hook_pattern"}[site]


@dataclass(frozen=True)
class CaptureConfig:
    split: str = field(default="validation", metadata={"help": "corpus split to run"})
    max_docs: int = field(default=256, metadata={"help": "documents to run (the first ones of the split)"})
    max_tokens: int = field(default=32768, metadata={"help": "token rows kept (a seeded sample if more)"})
    sites: str = field(default="resid_pre,resid_mid,resid_post,ln1,q,k,pattern",
                       metadata={"help": f"comma list of {','.join(SITES)}"})
    layers: str = field(default="all", metadata={"help": "'all' or a comma list of layer indices"})
    dtype: str = field(default="float32", metadata={"help": "float32 | float16"})
    pattern_docs: int = field(default=4, metadata={"help": "documents whose attention patterns are kept"})
    batch_size: int = 16
    seed: int = field(default=0, metadata={"help": "seed of the token sample"})


@dataclass
class Activations:
    acts: dict  # TL hook name -> torch.Tensor
    labels: dict  # label name -> np.ndarray [N]
    meta: dict

    def get(self, site: str, layer: int):
        name = hook_name(site, layer)
        if name not in self.acts:
            have = sorted({k for k in self.acts})
            raise UserError(f"no activations for {name}; captured: {', '.join(have[:6])}"
                            f"{' ...' if len(have) > 6 else ''}")
        return self.acts[name]

    def layers(self, site: str) -> list[int]:
        return [L for L in range(self.meta["n_layers"]) if hook_name(site, L) in self.acts]


def _parse(cfg: CaptureConfig, n_layers: int) -> tuple[list[str], list[int]]:
    sites = [s.strip() for s in cfg.sites.split(",") if s.strip()]
    bad = [s for s in sites if s not in SITES]
    if bad or not sites:
        raise UserError(f"unknown site(s) {bad or cfg.sites!r}; choose from {', '.join(SITES)}")
    if cfg.layers == "all":
        layers = list(range(n_layers))
    else:
        try:
            layers = sorted({int(x) for x in cfg.layers.split(",")})
        except ValueError:
            raise UserError(f"layers must be 'all' or a comma list of integers, got {cfg.layers!r}") from None
        for L in layers:
            if not 0 <= L < n_layers:
                raise UserError(f"layer {L} does not exist; the model has layers 0..{n_layers - 1}")
    if cfg.dtype not in ("float32", "float16"):
        raise UserError(f"dtype must be float32 or float16, got {cfg.dtype!r}")
    if cfg.max_docs < 1 or cfg.max_tokens < 1 or cfg.batch_size < 1 or cfg.pattern_docs < 0:
        raise UserError("max_docs, max_tokens and batch_size must be positive, pattern_docs >= 0")
    return sites, layers


def _rows(n_docs: int, T: int, max_tokens: int, seed: int) -> np.ndarray:
    """Boolean ``[n_docs, T]`` mask of kept positions (all, or a seeded sample of ``max_tokens``)."""
    keep = np.ones((n_docs, T), dtype=bool)
    if n_docs * T > max_tokens:
        keep[:] = False
        idx = np.random.default_rng(seed).choice(n_docs * T, size=max_tokens, replace=False)
        keep.flat[idx] = True
    return keep


def capture(model, corpus, cfg: CaptureConfig = CaptureConfig(), progress: bool = True) -> Activations:
    """Run ``model`` over ``corpus.splits[cfg.split]`` and collect activations and labels (see module doc)."""
    import torch

    from linebreak.progress import bar

    if cfg.split not in corpus.splits:
        raise UserError(f"corpus has no split {cfg.split!r}; it has {', '.join(corpus.splits)}")
    lay = arch.layout(model)
    arch.ensure_eager(model).eval()
    sites, layers = _parse(cfg, lay.n_layers)
    if "resid_mid" in sites and arch.parallel_residual(model):
        sites.remove("resid_mid")  # attention and MLP both read resid_pre: there is no mid point
    split = corpus.splits[cfg.split]
    ids = split.input_ids[: cfg.max_docs]
    n_docs, T = ids.shape
    arch.check_vocab_fits(model, int(ids.max()))
    n_ctx = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", T)
    if T > n_ctx:
        raise UserError(f"documents have {T} tokens but the model's context is {n_ctx}")
    keep = _rows(n_docs, T, cfg.max_tokens, cfg.seed)
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

    def store(name, x):  # x [B, T, ...]: keep the selected positions
        rows = x[state["sel"]]
        acts[name][state["row"]: state["row"] + len(rows)] = rows.to(dtype)

    def store_pattern(name, weights):  # weights [B, H, T, T]: keep the first n_pat documents
        take = min(n_pat - state["doc"], len(weights))
        if take > 0:
            acts[name][state["doc"]: state["doc"] + take] = weights[:take].to(dtype)

    def first(x):
        return x[0] if isinstance(x, tuple) else x

    def on_output(module, name, read):  # read(inputs, output) -> tensor
        return module.register_forward_hook(lambda m, a, o: store(name, read(a, o)))

    handles = []
    try:
        for L in layers:
            block, n = arch.blocks(model)[L], {s: hook_name(s, L) for s in SITES}
            if "resid_pre" in sites:
                handles.append(block.register_forward_pre_hook(
                    lambda m, a, kw, n=n: store(n["resid_pre"], a[0] if a else kw["hidden_states"]),
                    with_kwargs=True))
            if "resid_post" in sites:
                handles.append(on_output(block, n["resid_post"], lambda a, o: first(o)))
            if "resid_mid" in sites:  # the input of the norm the MLP reads
                handles.append(on_output(arch.mlp_norm(model, L), n["resid_mid"], lambda a, o: a[0]))
            if "ln1" in sites:
                handles.append(on_output(arch.attn_norm(model, L), n["ln1"], lambda a, o: o))
            for module, extract in arch.qk_sources(model, L) if {"q", "k"} & set(sites) else []:
                def qk_hook(m, a, o, f=extract, n=n):
                    for key, x in f(o).items():
                        if key in sites:
                            store(n[key], x)
                handles.append(module.register_forward_hook(qk_hook))
            if n_pat:
                handles.append(arch.attention(model, L).register_forward_hook(
                    lambda m, a, o, n=n: store_pattern(n["pattern"], o[1])))

        with torch.no_grad():
            for start in bar(range(0, n_docs, cfg.batch_size), desc="capture", unit="batch",
                              disable=not progress):
                sl = slice(start, start + cfg.batch_size)
                state["sel"] = torch.from_numpy(keep[sl])
                state["doc"] = start
                model(input_ids=torch.from_numpy(ids[sl]), use_cache=False)
                state["row"] += int(keep[sl].sum())
    finally:
        for h in handles:
            h.remove()

    lab = corpus.labels(cfg.split)
    labels = {k: np.asarray(v[: n_docs])[keep] for k, v in lab.items()}
    doc, pos = np.nonzero(keep)
    labels |= {"doc": doc.astype(np.int64), "pos": pos.astype(np.int64), "token": ids[keep].astype(np.int64),
               "token_len": corpus.token_lengths[ids[keep]].astype(np.int64)}
    meta = {"format": "linebreak-activations/1", "config": asdict(cfg), "arch": asdict(lay),
            "n_layers": lay.n_layers, "layers": layers, "sites": sites, "n_rows": N, "n_docs": n_docs,
            "seq_len": T, "pattern_docs": list(range(n_pat)),
            "corpus": {"path": str(getattr(corpus, "path", "")),
                       "fingerprint": corpus.meta.get("fingerprint")},
            "newline_id": int(corpus.newline_id), "bos_id": int(corpus.bos_id)}
    return Activations(acts, labels, meta)


def save_activations(a: Activations, out_dir: str | Path) -> Path:
    """Write ``activations.safetensors``, ``labels.safetensors`` and ``capture.json`` (last: the marker)."""
    out_dir = Path(out_dir)
    save_tensors(out_dir / "activations.safetensors", a.acts)
    save_tensors(out_dir / "labels.safetensors", {k: np.ascontiguousarray(v) for k, v in a.labels.items()})
    desc = {k: {"dtype": str(v.dtype), "min": v.min().item() if len(v) else None,
                "max": v.max().item() if len(v) else None} for k, v in a.labels.items()}
    shapes = {k: list(v.shape) for k, v in a.acts.items()}
    save_json(out_dir / MARKER, a.meta | {"labels": desc, "shapes": shapes})
    return out_dir


def load_activations(path: str | Path) -> Activations:
    """Load a folder written by :func:`save_activations` (safetensors only; nothing unpickled)."""
    path = Path(path)
    meta = load_json(path / MARKER, "capture settings")
    if not isinstance(meta, dict) or meta.get("format") != "linebreak-activations/1":
        raise UserError(f"not a linebreak activations folder ({MARKER} format): {path}")
    acts = load_tensors(path / "activations.safetensors", "activations")
    labels = {k: v.numpy() for k, v in load_tensors(path / "labels.safetensors", "labels").items()}
    n = {len(v) for v in labels.values()}
    if n != {meta["n_rows"]}:
        raise UserError(f"labels do not match the activations ({n} rows vs {meta['n_rows']}): {path}")
    meta.pop("labels", None)
    meta.pop("shapes", None)
    return Activations(acts, labels, meta)
