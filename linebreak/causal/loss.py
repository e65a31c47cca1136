"""The measure every causal check reports: next-token loss split at newlines, under whatever hooks are active.

:func:`evaluate` runs ``ids`` in batches (:func:`linebreak.hooks.run.run_with_hooks`) and averages
:func:`linebreak.hooks.measure.newline_loss` over them; :func:`against` sets a condition beside the baseline.
A boundary mechanism should raise the newline loss far more than the loss on the other tokens. The tokens go to
the model's device, where the loss is taken (a large vocabulary's logits never leave it); sums are float32.
"""

from __future__ import annotations

import numpy as np

from linebreak.causal.result import Loss, LossDelta
from linebreak.hooks.load import model_device
from linebreak.hooks.measure import newline_loss
from linebreak.hooks.run import as_tensor, batches, run_with_hooks
from linebreak.rules.causal import MIN_LOSS_CHANGE


def evaluate(model, ids: np.ndarray, newline_id: int, batch_size: int, fwd_hooks=()) -> Loss:
    """Newline, other and overall loss over ``ids [n, T]`` with ``fwd_hooks`` (and any hooks already on)."""
    tot = {"nl_sum": 0.0, "nl_n": 0, "other_sum": 0.0, "other_n": 0}
    device = model_device(model)
    for s, e in batches(len(ids), batch_size):
        x = as_tensor(ids[s:e]).to(device)
        r = newline_loss(run_with_hooks(model, x, fwd_hooks).float(), x, newline_id)
        for k in tot:
            tot[k] += r[k]
    return Loss(newline_loss=tot["nl_sum"] / max(tot["nl_n"], 1),
                other_loss=tot["other_sum"] / max(tot["other_n"], 1),
                loss=(tot["nl_sum"] + tot["other_sum"]) / max(tot["nl_n"] + tot["other_n"], 1))


def against(base: Loss, new: Loss) -> LossDelta:
    """``new`` with its changes against ``base``; ``ratio = d_newline / d_other`` (inf / nan when ``d_other``
    is about zero)."""
    d_nl, d_ot = new.newline_loss - base.newline_loss, new.other_loss - base.other_loss
    ratio = d_nl / d_ot if abs(d_ot) > MIN_LOSS_CHANGE else float("inf") if d_nl > 0 else float("nan")
    return LossDelta(newline_loss=new.newline_loss, other_loss=new.other_loss, loss=new.loss, d_newline=d_nl,
                     d_other=d_ot, ratio=ratio)
