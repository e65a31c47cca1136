"""Nanda et al.'s progress measures for a modular-addition model, on the full P x P grid of inputs.

* Fourier norms of the embedding ``W_E[:P]`` and its key frequencies (found from its power spectrum with
  :func:`linebreak.fourier.key_frequencies`, never hard-coded).
* Gini coefficients of the Fourier component norms of ``W_E`` and of the neuron-logit map ``W_L``.
* Per-neuron frequency: the share of each MLP neuron's (centred) variance over (a, b) that lies in the
  {const, cos_k, sin_k}^2 block of the 2D Fourier basis, maximised over k.
* Restricted loss: the logits projected onto cos(w_k(a+b)) and sin(w_k(a+b)) for the key frequencies,
  plus each class's mean logit, scored on all P*P pairs (these logits depend on (a+b) mod P only, so every
  split gives nearly the same value). Excluded loss: the logits with those directions removed, scored on
  the training set (Nanda et al. 2023, section 5.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from linebreak import fourier
from linebreak.grok.data import ModpData
from linebreak.grok.model import Transformer


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy with the log-softmax in float64 (losses reach 1e-7; float32 rounds them away)."""
    logp = F.log_softmax(logits.double(), dim=-1)
    return -logp.gather(-1, labels[:, None]).mean()


def embedding_key_frequencies(model: Transformer) -> list[int]:
    return fourier.key_frequencies(fourier.frequency_power(model.W_E[: model.shape.p].detach().numpy()))


def gini_measures(model: Transformer) -> dict[str, float]:
    p = model.shape.p
    W_E = model.W_E[:p].detach().numpy()
    W_L = model.neuron_logit_map().detach().numpy().T  # [P, d_mlp]: the output class on axis 0
    return {"gini_W_E": fourier.gini(fourier.component_norms(W_E)),
            "gini_W_L": fourier.gini(fourier.component_norms(W_L))}


def _sum_directions(p: int, freqs: list[int]) -> np.ndarray:
    """Unit vectors over the P*P grid (rows a*P+b): cos(w_k(a+b)), sin(w_k(a+b)) per key k. [2K, P*P]."""
    s = (np.arange(p)[:, None] + np.arange(p)[None, :]).reshape(-1)
    rows = []
    for k in freqs:
        w = 2 * np.pi * k * s / p
        rows += [np.cos(w), np.sin(w)]
    D = np.asarray(rows, dtype=np.float64).reshape(-1, p * p)
    return D / np.linalg.norm(D, axis=1, keepdims=True) if len(D) else D


@torch.no_grad()
def restricted_excluded_loss(model: Transformer, data: ModpData, freqs: list[int]) -> tuple[float, float]:
    """(restricted loss on all pairs, excluded loss on the train set) for the key frequencies ``freqs``."""
    logits = model(data.tokens).double().numpy()  # [P*P, P]
    D = _sum_directions(data.p, freqs)
    proj = D.T @ (D @ logits)  # the logits' part along the key directions
    restricted = torch.from_numpy(proj + logits.mean(axis=0, keepdims=True))
    excluded = torch.from_numpy(logits - proj)[data.train_idx]
    return (float(cross_entropy(restricted, data.labels)),
            float(cross_entropy(excluded, data.labels[data.train_idx])))


@dataclass
class NeuronFrequencies:
    freq: np.ndarray  # [d_mlp] the best frequency k of each neuron (0 = dead / constant neuron)
    share: np.ndarray  # [d_mlp] share of the neuron's variance in that frequency's 3x3 block


def frequency_shares(acts: np.ndarray) -> NeuronFrequencies:
    """Best frequency and its variance share for each neuron of ``acts [P, P, n]`` (over the (a, b) grid).

    A neuron's share for frequency k is the part of its centred variance in the 2D Fourier block
    {const, cos_k, sin_k} x {const, cos_k, sin_k} (Nanda et al.'s neuron clusters use share >= 0.85).
    """
    p = acts.shape[0]
    acts = acts - acts.mean(axis=(0, 1), keepdims=True)
    Fb, _ = fourier.fourier_basis(p)
    C = np.einsum("fa,gb,abn->fgn", Fb, Fb, acts) ** 2  # 2D Fourier power per neuron
    ks = fourier.basis_frequencies(p)
    total = C.sum(axis=(0, 1))
    blocks = np.stack([C[np.ix_(np.isin(ks, [0, k]), np.isin(ks, [0, k]))].sum(axis=(0, 1))
                       for k in range(1, p // 2 + 1)])  # [P//2, n]
    share = np.divide(blocks, total, out=np.zeros_like(blocks), where=total > 1e-20)
    best = share.argmax(axis=0)
    freq = np.where(total > 1e-20, best + 1, 0)
    return NeuronFrequencies(freq=freq, share=share[best, np.arange(share.shape[1])])


@torch.no_grad()
def neuron_frequencies(model: Transformer, data: ModpData) -> NeuronFrequencies:
    """Each MLP neuron's dominant frequency at ``=`` over the (a, b) grid, and the variance share it explains."""
    _, post = model(data.tokens, return_mlp=True)
    return frequency_shares(post.double().numpy().reshape(data.p, data.p, -1))


@torch.no_grad()
def accuracy_and_loss(model: Transformer, data: ModpData) -> dict[str, float]:
    logits = model(data.tokens)
    out = {}
    for split, idx in (("train", data.train_idx), ("test", data.test_idx)):
        out[f"{split}_loss"] = float(cross_entropy(logits[idx], data.labels[idx]))
        out[f"{split}_acc"] = float((logits[idx].argmax(-1) == data.labels[idx]).double().mean())
    return out
