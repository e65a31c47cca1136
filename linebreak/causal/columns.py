"""Key ablation for a table head: does its effect run through *which column* an earlier row's key marks?

The measure is the pad loss: the next-token cross-entropy at the pad decisions on rows >= 1
(:func:`linebreak.qk.keyclass.query_tokens`), where the layout has been shown and the pad is determined. One
head of one layer is changed at a time (:func:`linebreak.hooks.interventions.edit_keys`, at ``attn.hook_k``),
at every key token of the qk result's class (``pad`` or ``cell_start``, :func:`linebreak.qk.keyclass.key_values`),
each of which marks a column start:

- ``head_removed``: the head's output zeroed (``hook_z``): the effect to explain;
- ``mean``: each such key set to the mean of them;
- ``resample_same_column``: each replaced by the key of a random token of the class *that marks the same column
  start* (another token, mostly of another document; the column is all it keeps);
- ``resample_other_column``: by the key of a random token of the class that marks *another* column start;
- ``resample_same_document``: by the key of another token of the class that marks the same column start *in
  the same document* (an earlier or later row; a key with no such partner keeps its own). Beside
  ``resample_same_column`` it tells whether a key carries more than its column start, and whether that more is
  its document's: a key that keeps the effect only from its own document matches on something the document
  fixes (its layout), not on the column start alone.

A head that compares the count with the key's column keeps its effect under the same-column resample and loses
it under the other-column one (``same_column_share`` small, ``other_column_share`` near 1 or above: a wrong
column misleads). The shares are each condition's rise in pad loss over the head's own
(:data:`linebreak.rules.causal.COLUMN_SAME_MAX_SHARE`, ``COLUMN_OTHER_MIN_SHARE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from linebreak.causal.config import CausalConfig
from linebreak.causal.keys import resample_rows
from linebreak.hooks.interventions import edit_keys, zero_heads
from linebreak.hooks.load import model_device
from linebreak.hooks.points import hook_name
from linebreak.hooks.run import as_tensor, batches, run_with_hooks
from linebreak.qk import keyclass
from linebreak.qk.collect import check_model, select_docs
from linebreak.results import OMIT, Result
from linebreak.rules.causal import COLUMN_OTHER_MIN_SHARE, COLUMN_SAME_MAX_SHARE, MIN_LOSS_CHANGE


@dataclass(kw_only=True)
class ColumnKeyAblation:
    """One head's pad-loss rises (nats, against ``base_pad_loss``) under each condition of the module doc, the
    shares of its own rise, and the two checks."""
    head: str
    base_pad_loss: float
    head_removed: float
    mean: float
    resample_same_column: float
    resample_other_column: float
    same_column_share: float
    other_column_share: float
    keeps_with_same_column: bool
    loses_with_other_column: bool
    resample_same_document: float | None = field(default=None, metadata=OMIT)
    same_document_share: float | None = field(default=None, metadata=OMIT)
    same_document_keys: float | None = field(default=None, metadata=OMIT)  # share of keys with a partner


@dataclass(kw_only=True)
class ColumnCausalResult(Result):
    """The key ablations of a table model's verdict head and its column head (``linebreak causal --keys
    cell_start``)."""

    FORMAT = "linebreak-causal-columns/1"

    config: CausalConfig
    n_docs: int
    n_pads: int
    heads: list[ColumnKeyAblation]
    model: str | None = field(default=None, metadata={"omit_if_none": True})


def pad_loss(model, ids: np.ndarray, lab: dict, batch_size: int, hooks_for=lambda s, e: ()) -> float:
    """Mean next-token cross-entropy at the pad decisions of ``ids`` (:func:`keyclass.query_tokens`), with the
    hooks ``hooks_for(s, e)`` returns for the batch of documents ``s:e`` (float64 sum)."""
    import torch

    mask = keyclass.query_tokens(lab)
    total, n = 0.0, 0
    device = model_device(model)
    for s, e in batches(len(ids), batch_size):
        x = as_tensor(ids[s:e]).to(device)
        logp = torch.log_softmax(run_with_hooks(model, x, hooks_for(s, e)).float(), -1)
        m = torch.as_tensor(mask[s:e], device=device)
        target = torch.roll(x, -1, dims=1)
        total -= float(logp.gather(-1, target[..., None])[..., 0][m].double().sum())
        n += int(m.sum())
    return total / max(n, 1)


def column_key_ablation(model, ids: np.ndarray, lab: dict, keys: str, layer: int, head: int, cfg: CausalConfig,
                        base: float) -> ColumnKeyAblation:
    """The conditions of the module doc for ``head`` of ``layer`` at the key tokens of class ``keys``
    (:func:`linebreak.qk.keyclass.key_values`), against the pad loss ``base``."""
    import torch

    starts = keyclass.key_values(lab, keys)  # the column start each key token marks, -1 elsewhere
    before = np.concatenate([[0], np.cumsum((starts >= 0).sum(1))])  # key tokens in the documents before each
    batch: dict = {}
    pool, pool_col = [], []

    def collect(k, x):
        g = batch["cols"]
        pool.append(k[g >= 0].detach().float().cpu())
        pool_col.append(g[g >= 0].cpu())
        return k

    def with_keys(fn):
        def hooks_for(s, e):
            batch["cols"], batch["first"] = torch.as_tensor(starts[s:e]), int(before[s])
            return ()
        with edit_keys(model, layer, head, fn):
            return pad_loss(model, ids, lab, cfg.batch_size, hooks_for)

    with_keys(collect)
    keys, key_col = torch.cat(pool), torch.cat(pool_col)
    mean = keys.double().mean(0).float()
    gen = torch.Generator().manual_seed(cfg.seed)

    def resample(same):
        def fn(k, x):
            g = batch["cols"].to(k.device)
            return resample_rows(k, g >= 0, keys, gen, g, key_col.to(k.device), same=same)
        return fn

    doc = np.repeat(np.arange(len(ids)), np.diff(before))  # the document of each pool key, in pool order
    partner = torch.as_tensor(same_document_partners(doc, key_col.numpy(), cfg.seed))

    def resample_own_document(k, x):
        rows = batch["cols"].to(k.device) >= 0
        p = partner[batch["first"]: batch["first"] + int(rows.sum())].to(k.device)
        new = k[rows]
        new[p >= 0] = keys.to(k)[p[p >= 0]]
        k = k.clone()
        k[rows] = new
        return k

    removed = pad_loss(model, ids, lab, cfg.batch_size, lambda s, e: [(hook_name("z", layer), zero_heads([head]))])
    d = {"mean": with_keys(lambda k, x: torch.where((batch["cols"] >= 0).to(k.device)[..., None], mean.to(k), k)),
         "same": with_keys(resample(True)), "other": with_keys(resample(False)),
         "document": with_keys(resample_own_document)}
    d = {k: v - base for k, v in d.items()}
    d_head = removed - base
    share = {k: v / d_head if d_head > MIN_LOSS_CHANGE else float("nan") for k, v in d.items()}
    return ColumnKeyAblation(
        head=f"L{layer}H{head}", base_pad_loss=base, head_removed=d_head, mean=d["mean"],
        resample_same_column=d["same"], resample_other_column=d["other"], same_column_share=share["same"],
        other_column_share=share["other"], keeps_with_same_column=bool(share["same"] <= COLUMN_SAME_MAX_SHARE),
        loses_with_other_column=bool(share["other"] >= COLUMN_OTHER_MIN_SHARE),
        resample_same_document=d["document"], same_document_share=share["document"],
        same_document_keys=float((partner >= 0).double().mean()) if len(partner) else float("nan"))


def same_document_partners(doc: np.ndarray, col: np.ndarray, seed: int) -> np.ndarray:
    """For each key (its document ``doc`` and column start ``col``, in pool order), the pool index of another
    key of the same document and column start, drawn uniformly (seeded), or -1 when it has none."""
    rng = np.random.default_rng([seed, 7])
    out = np.full(len(doc), -1, dtype=np.int64)
    groups: dict = {}
    for j, key in enumerate(zip(doc.tolist(), col.tolist())):
        groups.setdefault(key, []).append(j)
    for members in groups.values():
        if len(members) < 2:
            continue
        m = np.asarray(members)
        r = rng.integers(0, len(m) - 1, size=len(m))  # one of the others: skip the key itself
        out[m] = m[r + (r >= np.arange(len(m)))]
    return out


def column_causal(model, corpus, qk_result, cfg: CausalConfig | None = None, tokenizer=None) -> ColumnCausalResult:
    """:func:`column_key_ablation` of the verdict's head and the column head of ``qk_result`` (a
    :class:`linebreak.qk.columns.ColumnQKResult`), on ``cfg.n_docs`` documents of ``cfg.split``."""
    cfg = cfg or CausalConfig()
    check_model(model, tokenizer, corpus)
    ids, lab = select_docs(corpus, cfg.split, cfg.n_docs)
    keyclass.check_table(lab)
    base = pad_loss(model, ids, lab, cfg.batch_size)
    names = list(dict.fromkeys([qk_result.verdict.best_head, qk_result.column_head]))
    heads = []
    for name in names:
        h = qk_result.head(name)
        heads.append(column_key_ablation(model, ids, lab, qk_result.config.keys, h.layer, h.head, cfg, base))
    return ColumnCausalResult(config=cfg, n_docs=len(ids), n_pads=int(keyclass.query_tokens(lab).sum()),
                              heads=heads)
