"""The count code, a positive control for wrapping (issue 19 item 5): the character count handed to the model
on a helix.

What: fixed sinusoids of each token's character count ``c``, ``cos(2 pi c / p)`` and ``sin(2 pi c / p)`` for a
few periods ``p``, added to the token's input embedding in the first ``2 * len(periods)`` coordinates, like a
position code that restarts at every newline. ``c`` is the label function's own count
(:func:`linebreak.corpus.labels.token_labels`): characters on the line up to and including the token, and at a
newline the length of the line it ends (``line_len``), which is what a boundary head's key would compare. It
is computed from the input ids alone, and only from the ids up to the token, so the model stays causal.

Why: 92 models trained here keep the count on a bent ramp and compare count with width additively, and the
twist verdict (docs/qk.md) has never passed. With the count given on a curve the question is open to a
trained model: either a boundary head twists count onto width (the verdict can pass, and curvature is
enough), or it does not (wrapping does not use a twist even when curvature is free). Off by default
(:attr:`linebreak.train.model.ModelConfig.count_code_control`); results in docs/research/control.md.

How it travels: the settings (periods, norm, characters per token id, the newline id) are stored in the
model's ``config.json`` under :data:`CONFIG_KEY`, and :func:`attach_count_code` adds the code as a forward hook
on the input embedding. The training builder (:func:`linebreak.train.model.build_model`) and
:func:`linebreak.hooks.load.load_model` both call it, so every stage runs the model that was trained. The code
has no parameters: no weight changes, and a model without the key is left exactly as it was.

Limit: the hook counts from the start of the ids it is given, so incremental decoding with a KV cache (one
new token per call) would restart the count; no stage decodes that way.
"""

from __future__ import annotations

import math

import numpy as np

from linebreak.corpus.labels import token_labels

CONFIG_KEY = "linebreak_count_code"


def code_settings(cfg, token_lengths, newline_id: int) -> dict | None:
    """The code's settings as stored in ``config.json`` (plain JSON) for the model settings ``cfg``
    (:class:`~linebreak.train.model.ModelConfig`) on a corpus with these characters per token id and this
    newline id; None when ``cfg.count_code_control`` is off."""
    if not cfg.count_code_control:
        return None
    return {"periods": [int(p) for p in cfg.count_code_periods], "norm": float(cfg.count_code_norm),
            "token_lengths": [int(n) for n in np.asarray(token_lengths)], "newline_id": int(newline_id)}


def line_counts(input_ids, token_lengths, newline_id: int) -> np.ndarray:
    """Per token of each row of ``input_ids`` ([..., T]): its ``count`` from :func:`token_labels`, and at a
    newline the ``line_len`` of the line it ends (the value the code encodes)."""
    ids = np.asarray(input_ids)
    lengths = np.asarray(token_lengths, dtype=np.int64)
    rows = ids.reshape(-1, ids.shape[-1])
    out = np.empty(rows.shape, dtype=np.int64)
    for r, row in enumerate(rows):
        lab = token_labels(lengths[row], row == newline_id, 0)  # the width does not enter the count
        out[r] = np.where(lab["is_newline"], lab["line_len"], lab["count"])
    return out.reshape(ids.shape)


def code(values: np.ndarray, periods, norm: float, d_model: int) -> np.ndarray:
    """The code of counts ``values`` ([...]) as float64 ``[..., d_model]``: each period's cosine and sine pair
    in two coordinates, scaled so that every count's code has norm ``norm``; the other coordinates are 0."""
    periods = np.asarray(periods, dtype=np.float64)
    angle = 2 * math.pi * np.asarray(values, dtype=np.float64)[..., None] / periods
    pairs = np.stack([np.cos(angle), np.sin(angle)], -1).reshape(*angle.shape[:-1], 2 * len(periods))
    out = np.zeros((*pairs.shape[:-1], d_model))
    out[..., :pairs.shape[-1]] = pairs * (norm / math.sqrt(len(periods)))
    return out


def attach_count_code(model, count_code: dict | None = None):
    """Add the count code to ``model``'s input embedding as a forward hook, and record its settings in
    ``model.config`` (so ``save_pretrained`` writes them). ``count_code``: :func:`code_settings`, or None to use the
    model config's own (a loaded model). Returns the hook handle, or None when there is no code (nothing
    changes) or it is attached already."""
    import torch

    count_code = count_code if count_code is not None else getattr(model.config, CONFIG_KEY, None)
    emb = model.get_input_embeddings()
    if count_code is None or getattr(emb, "_linebreak_count_code", None) is not None:
        return None
    s = dict(count_code)
    periods, norm, newline_id = s["periods"], float(s["norm"]), int(s["newline_id"])
    lengths = np.asarray(s["token_lengths"], dtype=np.int64)
    if len(lengths) != emb.num_embeddings or not 0 <= newline_id < len(lengths):
        from linebreak.io import UserError

        raise UserError(f"the count code in {CONFIG_KEY} describes {len(lengths)} tokens, and the model has "
                        f"{emb.num_embeddings} embeddings")

    def add_code(module, args, output):
        values = line_counts(args[0].detach().cpu().numpy(), lengths, newline_id)
        return output + torch.as_tensor(code(values, periods, norm, output.shape[-1]), dtype=output.dtype,
                                        device=output.device)

    setattr(model.config, CONFIG_KEY, s)
    handle = emb.register_forward_hook(add_code)
    emb._linebreak_count_code = handle
    return handle
