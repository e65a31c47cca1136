"""Newline metrics of a model: its newline decisions scored against the Bayes references.

At every word token that has a successor (:func:`linebreak.train.baselines.newline_positions`) the model's
P(next = newline) is compared with what happened and with three references from
:mod:`linebreak.train.baselines`: the Bayes-posterior predictor (the achievable optimum: the width is never
written in the text), the oracle told the width, and the constant training-set rate. The headline number is
the share of achievable information captured, ``(CE_const - CE_model) / (CE_const - CE_posterior)``.
In a table corpus the newline metrics are over its wrapped-prose documents (NaN if it has none). Lines
longer than the width (``over_long``: a URL alone on its line) are not scored.

In a table corpus (:mod:`linebreak.corpus.tables`) it also scores the pads, :func:`pad_metrics`: at each
token whose next token is a pad, the length of the pad given that a pad comes (the model's distribution
renormalised over the pad tokens), by row: row 0, where the layout is still a draw, and rows >= 1, where it is
shown (:func:`linebreak.train.baselines.pad_length_bayes` is the reference, ~0 nats there without empty
cells). ``pad_acc_vocab_*`` is the stricter accuracy: the whole vocabulary's argmax is that pad.
"""

from __future__ import annotations

import numpy as np

from linebreak.corpus.store import Corpus
from linebreak.train.baselines import (
    binary_ce,
    break_prob_oracle,
    break_prob_posterior,
    newline_positions,
    pad_length_bayes,
)

PAD_ROWS = {"row0": lambda row: row == 0, "rows1": lambda row: row >= 1}
PAD_METRICS = ("pad_acc", "pad_acc_vocab", "pad_ce", "pad_ce_bayes", "pad_acc_bayes", "pad_positions")


def prose_positions(labels: dict[str, np.ndarray], layout: dict[str, np.ndarray] | None) -> np.ndarray:
    """:func:`newline_positions` in the wrapped-prose documents only (a table corpus has ``layout``)."""
    mask = newline_positions(labels)
    if layout is not None:
        mask &= (layout["col_starts"][:, 0] < 0)[:, None]
    return mask


def evaluate_newlines(model, corpus: Corpus, split: str = "validation", n_docs: int | None = None,
                      batch_size: int = 32) -> dict:
    """Score the model's newline decisions on ``split`` against the oracle, posterior and constant baselines.

    Returns newline cross-entropy (nats) of the model and of each reference, the share of achievable
    information captured (against the posterior and against the oracle), accuracy where a break is forced
    (no word fits) or impossible (every word fits), accuracy per width, and the language-model loss.
    """
    import torch

    s = corpus.splits[split]
    ids = s.input_ids[:n_docs]
    layout = None if s.layout is None else {k: v[:n_docs] for k, v in s.layout.items()}
    labels = corpus.labels(split, n_docs)
    mask = prose_positions(labels, layout)
    pad_ids = np.flatnonzero(corpus.pad_by_id) if layout is not None else None
    was_training = model.training
    model.eval()
    p_model, lm_loss, pad_logp, top_id = [], [], [], []
    device = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, len(ids), batch_size):
            x = torch.as_tensor(ids[i:i + batch_size], device=device)
            logits = model(input_ids=x).logits.float()
            lm_loss.append(torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1), x[:, 1:].flatten(), reduction="sum").item())
            p_model.append(torch.softmax(logits, -1)[..., corpus.newline_id].cpu().numpy())
            if pad_ids is not None:
                pad_logits = logits[..., torch.as_tensor(pad_ids, device=device)]
                pad_logp.append(torch.log_softmax(pad_logits, -1).cpu().numpy())
                top_id.append(logits.argmax(-1).cpu().numpy())
    model.train(was_training)
    pads = {} if pad_ids is None else pad_metrics(np.concatenate(pad_logp), np.concatenate(top_id), ids, labels,
                                                  layout, pad_ids, corpus)
    if not mask.any():  # a corpus of tables only: no newline decision of wrapped prose to score
        nan = float("nan")
        return {**dict.fromkeys(NEWLINE_KEYS, nan), "newline_acc_by_width": {}, "lm_loss": _lm(lm_loss, ids),
                "positions": 0, "forced_positions": 0, "impossible_positions": 0, "documents": len(ids),
                "knowable_forced_positions": 0, **pads}
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
        "lm_loss": _lm(lm_loss, ids),
        "positions": int(mask.sum()), "forced_positions": int(forced.sum()),
        "impossible_positions": int(impossible.sum()), "documents": len(ids), **pads,
    }


NEWLINE_KEYS = ("newline_ce", "newline_ce_posterior", "newline_ce_oracle", "newline_ce_constant", "info_captured",
                "info_captured_oracle", "forced_break_acc", "forced_break_acc_bayes", "forced_break_acc_knowable",
                "no_break_acc", "newline_acc", "newline_acc_posterior")


def _lm(lm_loss: list[float], ids: np.ndarray) -> float:
    return sum(lm_loss) / (ids.shape[0] * (ids.shape[1] - 1))


def pad_metrics(pad_logp: np.ndarray, top_id: np.ndarray, ids: np.ndarray, labels: dict[str, np.ndarray],
                layout: dict[str, np.ndarray], pad_ids: np.ndarray, corpus: Corpus) -> dict:
    """Pad scores by row (:data:`PAD_ROWS`) beside the Bayes reference. ``pad_logp [n, T, n_pads]``: the
    model's log-probabilities renormalised over the pad tokens ``pad_ids``; ``top_id [n, T]``: its argmax over
    the whole vocabulary. ``None`` for a row class with no pad among the documents."""
    mask = labels["next_is_pad"].copy()
    mask[:, -1] = False
    target = np.zeros_like(ids)
    target[:, :-1] = ids[:, 1:]
    pad_len = corpus.token_lengths[target]
    q, q_top = pad_length_bayes(labels, layout["col_starts"], pad_len, corpus.table, corpus.word_length_probs)
    slot = np.searchsorted(pad_ids, target)  # the target's index among the pad tokens (at pad targets)
    logp = np.take_along_axis(pad_logp, np.minimum(slot, len(pad_ids) - 1)[..., None], -1)[..., 0]
    out = {}
    for name, rows in PAD_ROWS.items():
        m = mask & rows(labels["line_index"])
        if not m.any():
            out |= {f"{k}_{name}": (0 if k == "pad_positions" else None) for k in PAD_METRICS}
            continue
        out |= {f"pad_acc_{name}": float((pad_logp[m].argmax(-1) == slot[m]).mean()),
                f"pad_acc_vocab_{name}": float((top_id[m] == target[m]).mean()),
                f"pad_ce_{name}": float(-logp[m].mean()),
                f"pad_ce_bayes_{name}": float(-np.log(np.maximum(q[m], 1e-12)).mean()) + 0.0,  # not -0.0
                f"pad_acc_bayes_{name}": float(q_top[m].mean()),
                f"pad_positions_{name}": int(m.sum())}
    return out


_RATE_CACHE: dict[str, float] = {}  # by corpus fingerprint: the rate is a property of the training split


def train_newline_rate(corpus: Corpus) -> float:
    """Share of scored training positions followed by a newline (the constant-rate predictor)."""
    key = corpus.fingerprint
    if key not in _RATE_CACHE:
        labels = corpus.labels("train")
        mask = prose_positions(labels, corpus.splits["train"].layout)
        _RATE_CACHE[key] = float(labels["next_is_newline"][mask].mean()) if mask.any() else float("nan")
    return _RATE_CACHE[key]
