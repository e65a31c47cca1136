"""Run a model with hook functions on TransformerLens names: the one way linebreak reads or edits a forward pass.

    run_with_hooks(model, input_ids, fwd_hooks=[("blocks.1.attn.hook_z", fn)])   -> logits
    run_with_cache(model, input_ids, ["blocks.0.hook_resid_pre", ...])           -> (logits, {name: tensor})
    with hooks(model, fwd_hooks): ...                                            hooks for several passes
    read_pass(model, ids, batch_size, [Reader(fwd_hooks, begin, n_docs), ...])  one pass, several readers

``fn(tensor, hook_name)`` sees the activation at that point (shapes in :mod:`linebreak.hooks.points`) and
may return a replacement, as in TransformerLens; it should not edit its tensor in place. Several hooks on one
point run in the order given, each seeing what the previous one returned. The model runs unconverted (plain
PyTorch module hooks on the Hugging Face modules), so with no replacing hook the logits are the model's own,
bit for bit. Both runners are no-grad unless ``grad=True``; extra keyword arguments go to the model's forward
(e.g. ``use_cache=False``).

Devices: ``input_ids`` (a CPU tensor is fine) go to the model's device; hook functions see the model's own
tensors (its device, its dtype) and a replacement should be built there (``.to(x)``); the logits come back as
the model made them (a large-vocabulary model's logits are the largest tensor of a pass: they stay on the
device). The cache of :func:`run_with_cache` is what the statistics read: float32 on the CPU
(``.detach().float().cpu()``, which for a float32 model on the CPU is the tensor itself, so its numbers are
bit-identical).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from linebreak.hooks.attach import attach


def add_hooks(model, fwd_hooks) -> list:
    """Register every ``(name, fn)`` of ``fwd_hooks``; returns the handles (remove them when done)."""
    handles: list = []
    try:
        for name, fn in fwd_hooks:
            handles += attach(model, name, fn)
    except BaseException:
        remove(handles)
        raise
    return handles


def remove(handles) -> None:
    for h in handles:
        h.remove()


@contextmanager
def hooks(model, fwd_hooks):
    """The hooks of ``fwd_hooks`` on ``model`` for the duration of the block (every forward pass in it)."""
    handles = add_hooks(model, fwd_hooks)
    try:
        yield model
    finally:
        remove(handles)


def run_with_hooks(model, input_ids, fwd_hooks=(), grad: bool = False, **model_kwargs):
    """One forward pass of ``input_ids [batch, pos]`` with ``fwd_hooks`` attached; returns the logits."""
    import torch

    from linebreak.hooks.load import model_device

    with hooks(model, fwd_hooks), torch.set_grad_enabled(grad):
        return model(input_ids=input_ids.to(model_device(model)), **model_kwargs).logits


def run_with_cache(model, input_ids, names, fwd_hooks=(), grad: bool = False, **model_kwargs):
    """One forward pass that also keeps the activations at ``names``: ``(logits, cache)``, the cache float32 on
    the CPU, detached (see the module doc).

    ``fwd_hooks`` run before the caching hooks, so the cache holds what the model used after any edit."""
    cache: dict = {}

    def keep(x, name):
        cache[name] = x.detach().float().cpu()

    logits = run_with_hooks(model, input_ids, [*fwd_hooks, *((n, keep) for n in names)], grad, **model_kwargs)
    return logits, cache


def batches(n: int, size: int):
    """``(start, end)`` of consecutive batches of at most ``size`` rows out of ``n``."""
    for s in range(0, n, size):
        yield s, min(n, s + size)


def as_tensor(ids: np.ndarray):
    """Token ids as a contiguous int64 tensor (what the model's ``input_ids`` takes)."""
    import torch

    return torch.as_tensor(np.ascontiguousarray(ids), dtype=torch.long)


@dataclass
class Reader:
    """One consumer of a streaming forward pass over documents (:func:`read_pass`): ``fwd_hooks`` that read
    (and do not replace) activations, ``begin(start, end)``, called before each batch it sees so that its hooks
    know which documents the batch holds, and ``n_docs``, how many of the first documents it reads."""
    fwd_hooks: list
    begin: Callable[[int, int], None]
    n_docs: int


def read_pass(model, ids: np.ndarray, batch_size: int, readers: list[Reader], desc: str = "forward",
              progress: bool = True) -> None:
    """Run the documents ``ids [n_docs, T]`` through ``model`` once, in batches of ``batch_size``, with the hooks
    of every reader that reads the batch's documents. Batches end at every reader's ``n_docs``, so a reader
    sees exactly its documents; with one reader (or readers of the same documents) the batches are those of
    :func:`batches`, so its numbers are those of a pass of its own. The capture and the qk stage read one
    pass this way in the study (:func:`linebreak.study.line_stages.run_line_stages`)."""
    from linebreak.progress import bar

    n = max(r.n_docs for r in readers)
    if n > len(ids):
        raise ValueError(f"a reader asks for {n} documents of {len(ids)}")
    ends = sorted({e for _, e in batches(n, batch_size)} | {r.n_docs for r in readers})
    for s, e in bar(list(zip([0, *ends[:-1]], ends)), desc=desc, unit="batch", leave=False, disable=not progress):
        active = [r for r in readers if s < r.n_docs]
        for r in active:
            r.begin(s, e)
        run_with_hooks(model, as_tensor(ids[s:e]), [h for r in active for h in r.fwd_hooks], use_cache=False)
