"""Ablations: remove heads (at ``attn.hook_z``) or a subspace of the residual stream (at ``hook_resid_pre``).

- :func:`head_ablations`: zero the top-ranked head's output, then the top ``top`` heads together, then, as the
  control, every other head of the top head's layer one at a time, and the whole layer for scale. A
  boundary head should raise the newline loss far more than the other loss, and more than a random head of
  its layer.
- :func:`subspace_ablation`: project out the top-``k`` PCA subspace of the per-count means of the residual
  stream entering a layer (zero ablation of that subspace, as in Gurnee et al. 2025), beside ``n_random``
  random ``k``-dimensional subspaces.
"""

from __future__ import annotations

import numpy as np

from linebreak.causal.config import CausalConfig
from linebreak.causal.loss import against, evaluate
from linebreak.causal.result import HeadAblation, Loss, SubspaceAblation
from linebreak.hooks import arch
from linebreak.hooks.interventions import zero_heads
from linebreak.hooks.points import hook_name
from linebreak.rules.causal import NEWLINE_SPECIFIC_FACTOR


def head_ablations(model, ids, newline_id, ranked: list[tuple[int, int]], cfg: CausalConfig,
                   base: Loss) -> HeadAblation:
    """Head ablations for the heads in ``ranked`` order (``(layer, head)``, best first)."""
    lay = arch.layout(model)
    L0, h0 = ranked[0]

    def run(by_layer: dict):
        fwd = [(hook_name("z", L), zero_heads(hs)) for L, hs in by_layer.items()]
        return against(base, evaluate(model, ids, newline_id, cfg.batch_size, fwd))

    top1 = run({L0: [h0]})
    others = {f"L{L0}H{h}": run({L0: [h]}) for h in range(lay.n_heads) if h != h0}
    by_layer: dict[int, list[int]] = {}
    for L, h in ranked[: cfg.top]:
        by_layer.setdefault(L, []).append(h)
    top_n = run(by_layer)
    whole = run({L0: range(lay.n_heads)})
    rng = np.random.default_rng(cfg.seed)
    random_name = sorted(others)[int(rng.integers(len(others)))] if others else None
    other_d = [v.d_newline for v in others.values()]
    rand_d = others[random_name].d_newline if random_name is not None else float("nan")
    return HeadAblation(
        top_head=f"L{L0}H{h0}", top=top1, top_n_heads=[f"L{L}H{h}" for L, h in ranked[: cfg.top]],
        top_n=top_n, same_layer_others=others, random_head=random_name,
        random=others.get(random_name), all_heads_of_layer=whole,
        top_beats_random=bool(top1.d_newline > rand_d),
        top_beats_every_other_in_layer=bool(other_d and top1.d_newline > max(other_d)),
        top_newline_specific=bool(top1.d_newline > 0
                                  and top1.d_newline > NEWLINE_SPECIFIC_FACTOR * max(top1.d_other, 0)))


def project_out(basis):
    """``x -> x - (x B) B^T`` for an orthonormal ``basis [d, k]`` (zero-ablation of that subspace), computed on
    ``x``'s device in float32 at least (float64 stays float64) and returned in ``x``'s dtype: in bfloat16 the
    projection itself would leave a residue of the subspace about 2^-8 of ``|x|``."""
    import torch

    B = torch.as_tensor(basis, dtype=torch.float32)

    def fn(x):
        wide = torch.promote_types(x.dtype, torch.float32)
        xw, Bx = x.to(wide), B.to(x.device, wide)
        return (xw - (xw @ Bx) @ Bx.T).to(x.dtype)
    return fn


def subspace_ablation(model, ids, newline_id, layer: int, means: np.ndarray, cfg: CausalConfig,
                      base: Loss) -> SubspaceAblation:
    """Ablate the top PCA subspace of the per-count ``means [n_counts, d]`` at ``hook_resid_pre`` of ``layer``."""
    k = min(cfg.subspace_dim, len(means) - 1, means.shape[1])
    C = means - means.mean(0)
    _, S, Vt = np.linalg.svd(C, full_matrices=False)
    name = hook_name("resid_pre", layer)

    def ablated(basis):
        proj = project_out(basis)
        return against(base, evaluate(model, ids, newline_id, cfg.batch_size, [(name, lambda x, n: proj(x))]))

    top = ablated(Vt[:k].T)
    rng = np.random.default_rng(cfg.seed)
    rand = []
    for _ in range(cfg.n_random):
        Qr, _ = np.linalg.qr(rng.standard_normal((means.shape[1], k)))
        rand.append(ablated(Qr))
    mean_rand = {key: float(np.mean([getattr(r, key) for r in rand])) for key in ("d_newline", "d_other")}
    return SubspaceAblation(layer=layer, dim=k, variance_explained=float((S[:k] ** 2).sum() / (S**2).sum()),
                            count_subspace=top, random_subspaces=rand, random_mean=mean_rand,
                            beats_random_on_newline=bool(top.d_newline > mean_rand["d_newline"]))
