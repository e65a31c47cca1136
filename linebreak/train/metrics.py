"""Newline metrics of a model: its newline decisions scored against the Bayes references.

At every word token that has a successor (:func:`linebreak.train.baselines.newline_positions`) the model's
P(next = newline) is compared with what happened and with three references from
:mod:`linebreak.train.baselines`: the Bayes-posterior predictor (the achievable optimum: the width is never
written in the text), the oracle told the width, and the constant training-set rate. The headline number is
the share of achievable information captured, ``(CE_const - CE_model) / (CE_const - CE_posterior)``.
"""

from __future__ import annotations

import numpy as np

from linebreak.corpus.labels import labels_for_split
from linebreak.corpus.store import Corpus
from linebreak.train.baselines import binary_ce, break_prob_oracle, break_prob_posterior, newline_positions


def evaluate_newlines(model, corpus: Corpus, split: str = "validation", n_docs: int | None = None,
                      batch_size: int = 32) -> dict:
    """Score the model's newline decisions on ``split`` against the oracle, posterior and constant baselines.

    Returns newline cross-entropy (nats) of the model and of each reference, the share of achievable
    information captured (against the posterior and against the oracle), accuracy where a break is forced
    (no word fits) or impossible (every word fits), accuracy per width, and the language-model loss.
    """
    import torch

    s = corpus.splits[split]
    ids, widths = s.input_ids[:n_docs], s.width[:n_docs]
    labels = labels_for_split(ids, widths, corpus.token_lengths, corpus.newline_id)
    mask = newline_positions(labels)
    was_training = model.training
    model.eval()
    p_model, lm_loss = [], []
    device = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, len(ids), batch_size):
            x = torch.as_tensor(ids[i:i + batch_size], device=device)
            logits = model(input_ids=x).logits.float()
            lm_loss.append(torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1), x[:, 1:].flatten(), reduction="sum").item())
            p_model.append(torch.softmax(logits, -1)[..., corpus.newline_id].cpu().numpy())
    model.train(was_training)
    y = labels["next_is_newline"][mask]
    p = np.concatenate(p_model)[mask]
    lp = corpus.word_length_probs
    oracle = break_prob_oracle(labels["remaining"], lp, corpus.fill)[mask]
    posterior = break_prob_posterior(labels, corpus.widths, lp, corpus.fill)[mask]
    const_rate = train_newline_rate(corpus)
    ce = {"model": binary_ce(p, y), "posterior": binary_ce(posterior, y), "oracle": binary_ce(oracle, y),
          "constant": binary_ce(np.full(len(y), const_rate), y)}
    forced, impossible = oracle == 1.0, oracle == 0.0
    knowable = posterior >= 1.0 - 1e-9  # no word fits under every width consistent with the earlier lines
    pred = p > 0.5
    w = labels["width"][mask]
    return {
        "newline_ce": ce["model"], "newline_ce_posterior": ce["posterior"], "newline_ce_oracle": ce["oracle"],
        "newline_ce_constant": ce["constant"],
        "info_captured": (ce["constant"] - ce["model"]) / (ce["constant"] - ce["posterior"]),
        "info_captured_oracle": (ce["constant"] - ce["model"]) / (ce["constant"] - ce["oracle"]),
        "forced_break_acc": float(pred[forced].mean()) if forced.any() else float("nan"),
        # on a document's first line the width is not yet known, so some forced breaks cannot be foreseen:
        # the Bayes-posterior predictor's accuracy there is the ceiling; where the break can be known, the
        # model should always break
        "forced_break_acc_bayes": float((posterior[forced] > 0.5).mean()) if forced.any() else float("nan"),
        "forced_break_acc_knowable": float(pred[knowable].mean()) if knowable.any() else float("nan"),
        "knowable_forced_positions": int(knowable.sum()),
        "no_break_acc": float((~pred[impossible]).mean()) if impossible.any() else float("nan"),
        "newline_acc": float((pred == y).mean()),
        "newline_acc_posterior": float(((posterior > 0.5) == y).mean()),
        "newline_acc_by_width": {int(v): float((pred == y)[w == v].mean()) for v in np.unique(w)},
        "lm_loss": sum(lm_loss) / (ids.shape[0] * (ids.shape[1] - 1)),
        "positions": int(mask.sum()), "forced_positions": int(forced.sum()),
        "impossible_positions": int(impossible.sum()), "documents": len(ids),
    }


_RATE_CACHE: dict[str, float] = {}  # by corpus fingerprint: the rate is a property of the training split


def train_newline_rate(corpus: Corpus) -> float:
    """Share of scored training positions followed by a newline (the constant-rate predictor)."""
    key = corpus.fingerprint
    if key not in _RATE_CACHE:
        labels = corpus.labels("train")
        _RATE_CACHE[key] = float(labels["next_is_newline"][newline_positions(labels)].mean())
    return _RATE_CACHE[key]
