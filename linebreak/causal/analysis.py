"""``linebreak causal``: is the count / boundary machinery *used*? Ablations, patching, an insertion sweep.

All checks measure next-token cross-entropy split into positions whose next token is the newline
("newline loss") and all other positions ("other loss"), on the first ``n_docs`` documents of a split
(:mod:`linebreak.causal.loss`), for the heads the QK stage ranks (:class:`linebreak.qk.result.QKResult`):

1. **Head ablation** (:mod:`~linebreak.causal.ablation`) of the QK-top head and of the *measured* boundary
   head (:func:`boundary_ranking`), and **key ablation** (:mod:`~linebreak.causal.keys`) of both: their keys at
   newlines frozen or resampled, against removing the head (``key_share``).
2. **Count-subspace ablation** (:mod:`~linebreak.causal.ablation`) at ``hook_resid_pre`` of the top head's
   layer, against random subspaces of the same dimension.
3. **Count patching** (:mod:`~linebreak.causal.patching`): ``x' = x - mu[c] + mu[c + delta]`` at one token per
   document; P(newline) should rise with ``delta``.
4. **Insertion sweep** (:mod:`~linebreak.causal.insertion`): strings inserted mid-line.

:func:`causal_checks` runs them all and returns a :class:`~linebreak.causal.result.CausalResult`.
"""

from __future__ import annotations

from linebreak.causal.ablation import head_ablations, subspace_ablation
from linebreak.causal.config import CausalConfig
from linebreak.causal.insertion import insertion_sweep
from linebreak.causal.keys import key_ablations
from linebreak.causal.loss import evaluate
from linebreak.causal.patching import count_effects, count_means, count_patching
from linebreak.causal.result import CausalResult
from linebreak.hooks import arch
from linebreak.io import UserError
from linebreak.qk.attention import response_range
from linebreak.qk.collect import check_model, select_docs

__all__ = ["CausalConfig", "CausalResult", "boundary_ranking", "causal_checks"]


def boundary_ranking(qk_result) -> list[tuple[int, int]]:
    """Heads ranked by their *measured* boundary behaviour: the range of their attention to the previous
    newline across characters remaining (response curve), largest first. The QK ranking says which heads'
    weights twist; this one says which heads actually switch attention as the line fills."""
    hs = sorted(qk_result.heads, key=response_range, reverse=True)
    return [(int(h.layer), int(h.head)) for h in hs]


def causal_checks(model, corpus, qk_result, cfg: CausalConfig | None = None, tokenizer=None) -> CausalResult:
    """All four causal checks for the heads ranked by ``qk_result`` (a :class:`~linebreak.qk.result.QKResult`,
    :func:`linebreak.qk.analysis.qk_analysis`); ``cfg`` defaults to :class:`CausalConfig` ()."""
    from linebreak.progress import bar

    cfg = cfg or CausalConfig()
    check_model(model, tokenizer, corpus)
    ranked = [(int(h.layer), int(h.head)) for h in qk_result.heads]
    if not ranked:
        raise UserError("the QK result ranks no heads; run `linebreak qk` first")
    ids, lab = select_docs(corpus, cfg.split, cfg.n_docs)
    nl = corpus.newline_id
    layer = ranked[0][0]
    steps = bar(total=4, desc="causal", leave=False)
    base = evaluate(model, ids, nl, cfg.batch_size)
    head = head_ablations(model, ids, nl, ranked, cfg, base)
    boundary = boundary_ranking(qk_result)
    boundary_head = head_ablations(model, ids, nl, boundary, cfg, base)
    removed = {boundary[0]: boundary_head.top.d_newline,  # the measured boundary head first
               ranked[0]: head.top.d_newline}
    keys = key_ablations(model, ids, nl, removed, cfg, base, corpus.token_lengths,
                         {h.name: h.comparison for h in qk_result.heads})
    steps.update()
    counts, means = count_means(model, ids, lab, layer, cfg)
    if len(counts) < 3:
        raise UserError(f"too few counts with >= {cfg.min_per_value} tokens for the count subspace")
    subspace = subspace_ablation(model, ids, nl, layer, means, cfg, base)
    steps.update()
    p_layer = arch.check_layer(model, cfg.patch_layer if cfg.patch_layer >= 0 else arch.layout(model).n_layers - 1)
    p_counts, p_means = count_effects(model, ids, lab, p_layer, cfg)
    patching = count_patching(model, ids, lab, nl, p_layer, p_counts, p_means, cfg)
    steps.update()
    insertion = insertion_sweep(model, corpus, ids, lab, ranked, cfg)
    steps.update()
    steps.close()
    return CausalResult(config=cfg, n_docs=len(ids), baseline=base, head_ablation=head,
                        boundary_head_ablation=boundary_head, key_ablation=keys, subspace_ablation=subspace,
                        patching=patching, insertion=insertion)
