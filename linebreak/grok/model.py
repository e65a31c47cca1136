"""Nanda's one-layer modular-addition transformer, in plain PyTorch with TransformerLens weight names.

Embedding (``W_E``, learned ``W_pos``), one attention layer (``W_Q``, ``W_K``, ``W_V``, ``W_O``, no biases),
one ReLU MLP (``W_in``, ``b_in``, ``W_out``, ``b_out``), unembedding ``W_U`` to the P answer classes. No
LayerNorm. Initialisation as in Nanda's code: ``randn / sqrt(d_model)``, ``W_U`` ``randn / sqrt(d_vocab)``,
biases zero.

Only the logits at ``=`` (position 2) are ever used, so :meth:`Transformer.forward` runs attention for that
one query and the MLP and unembedding on that one position. :meth:`Transformer.forward_all_positions` is
the straightforward implementation (every position through every layer) kept for the benchmark and as a
check that the shortcut computes the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelShape:
    p: int
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    n_ctx: int = 3

    @property
    def d_vocab(self) -> int:
        return self.p + 1  # residues 0..P-1 and '='


class Transformer(nn.Module):
    def __init__(self, shape: ModelShape, seed: int = 0):
        super().__init__()
        self.shape = s = shape
        g = torch.Generator().manual_seed(seed)

        def init(*dims: int, scale: float) -> nn.Parameter:
            return nn.Parameter(torch.randn(*dims, generator=g) / scale)

        dm = s.d_model**0.5
        self.W_E = init(s.d_vocab, s.d_model, scale=dm)
        self.W_pos = init(s.n_ctx, s.d_model, scale=dm)
        self.W_Q = init(s.n_heads, s.d_model, s.d_head, scale=dm)
        self.W_K = init(s.n_heads, s.d_model, s.d_head, scale=dm)
        self.W_V = init(s.n_heads, s.d_model, s.d_head, scale=dm)
        self.W_O = init(s.n_heads, s.d_head, s.d_model, scale=dm)
        self.W_in = init(s.d_model, s.d_mlp, scale=dm)
        self.b_in = nn.Parameter(torch.zeros(s.d_mlp))
        self.W_out = init(s.d_mlp, s.d_model, scale=dm)
        self.b_out = nn.Parameter(torch.zeros(s.d_model))
        self.W_U = init(s.d_model, s.p, scale=s.d_vocab**0.5)

    def forward(self, tokens: torch.Tensor, return_mlp: bool = False):
        """Logits ``[batch, P]`` at ``=``; with ``return_mlp`` also the MLP activations there ``[batch, d_mlp]``."""
        resid = self.W_E[tokens] + self.W_pos  # [batch, 3, d_model]
        q = torch.einsum("bm,hmd->bhd", resid[:, -1], self.W_Q)  # one query: the '=' position
        k = torch.einsum("bpm,hmd->bhpd", resid, self.W_K)
        v = torch.einsum("bpm,hmd->bhpd", resid, self.W_V)
        pattern = torch.softmax(torch.einsum("bhd,bhpd->bhp", q, k) / self.shape.d_head**0.5, dim=-1)
        z = torch.einsum("bhp,bhpd->bhd", pattern, v)
        x = resid[:, -1] + torch.einsum("bhd,hdm->bm", z, self.W_O)
        post = F.relu(x @ self.W_in + self.b_in)
        x = x + post @ self.W_out + self.b_out
        logits = x @ self.W_U
        return (logits, post) if return_mlp else logits

    def forward_all_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """The same model run on every position with a causal mask; returns the logits at ``=``."""
        resid = self.W_E[tokens] + self.W_pos
        q = torch.einsum("bpm,hmd->bhpd", resid, self.W_Q)
        k = torch.einsum("bpm,hmd->bhpd", resid, self.W_K)
        v = torch.einsum("bpm,hmd->bhpd", resid, self.W_V)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / self.shape.d_head**0.5
        n = tokens.shape[1]
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
        pattern = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        z = torch.einsum("bhqk,bhkd->bhqd", pattern, v)
        x = resid + torch.einsum("bhqd,hdm->bqm", z, self.W_O)
        x = x + F.relu(x @ self.W_in + self.b_in) @ self.W_out + self.b_out
        return (x @ self.W_U)[:, -1]

    def neuron_logit_map(self) -> torch.Tensor:
        """``W_L = W_out @ W_U`` ``[d_mlp, P]``: how each neuron writes to each answer."""
        return self.W_out @ self.W_U

    def weight_norm_sq(self) -> float:
        return float(sum(p.detach().pow(2).sum() for p in self.parameters()))
