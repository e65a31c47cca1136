"""The modular-addition task: every pair (a, b) as the sequence ``a b =`` with label (a + b) mod P.

Rows are ordered ``a * P + b``, so any [P*P, ...] tensor reshapes to [P, P, ...] over (a, b). The train
split is a seeded random subset of the P*P pairs; the rest is held out as the test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from linebreak.io import UserError


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def check_task(p: int, frac_train: float) -> None:
    """Refuse a modulus that is not a prime >= 3, or a train fraction outside (0, 1)."""
    if p < 3 or not is_prime(p):
        raise UserError(f"P must be a prime >= 3, got {p}")
    if not 0 < frac_train < 1:
        raise UserError(f"train fraction must be in (0, 1), got {frac_train}")


@dataclass
class ModpData:
    p: int
    tokens: torch.Tensor  # [P*P, 3] int64: a, b, '=' (token id P)
    labels: torch.Tensor  # [P*P] int64: (a + b) mod P
    train_idx: torch.Tensor  # [n_train] int64 rows of tokens
    test_idx: torch.Tensor  # [n_test]


def make_data(p: int, frac_train: float, seed: int) -> ModpData:
    """All P*P pairs and a seeded split (at least one example on each side)."""
    check_task(p, frac_train)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
    n_train = min(max(int(frac_train * p * p), 1), p * p - 1)  # int() as in Nanda: 3830 of 12769
    return ModpData(p, tokens, (a + b) % p, perm[:n_train].sort().values, perm[n_train:].sort().values)
