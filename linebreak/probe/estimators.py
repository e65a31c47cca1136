"""Linear read-outs of a label from activations, scored on held-out documents.

* :func:`ridge_probe` — one direction that predicts a scalar (character count, line width, characters
  remaining) by ridge regression; held-out R^2 says how much of the label is linearly present.
* :func:`value_probes` — one logistic probe per label value (multinomial over, e.g., counts 4..80), as in
  Gurnee et al. 2025 section 2; its weights ``[V, d]`` are the "probe vectors" whose cosine matrix rings and
  which the QK stage multiplies through ``W_Q``/``W_K``. Their argmax prediction's RMSE is in characters.

Rows are split into train and test **by document** (``groups``), never by token, because tokens of one
document share a width and a history: a token-level split would leak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linebreak.io import UserError


@dataclass
class RidgeFit:
    r2_train: float
    r2_test: float
    rmse_test: float
    weight: np.ndarray  # [d] in the activation's own units: y_hat = X @ weight + bias
    bias: float
    alpha: float
    n_train: int
    n_test: int


@dataclass
class ValueProbes:
    values: np.ndarray  # [V] the label value each probe detects
    weights: np.ndarray  # [V, d] in the activation's own units: logits = X @ weights.T + bias
    bias: np.ndarray  # [V]
    rmse_test: float  # RMSE (label units, e.g. characters) of the argmax prediction on held-out documents
    accuracy_test: float
    n_train: int
    n_test: int


def split_by_group(groups: np.ndarray, test_frac: float = 0.25, seed: int = 0) -> np.ndarray:
    """Boolean ``[N]`` test mask: a seeded ``test_frac`` of the distinct groups (documents) is held out."""
    uniq = np.unique(groups)
    if len(uniq) < 2:
        raise UserError(f"need at least 2 documents to hold some out for testing, got {len(uniq)}")
    rng = np.random.default_rng(seed)
    n_test = min(len(uniq) - 1, max(1, round(test_frac * len(uniq))))
    test_groups = rng.choice(uniq, size=n_test, replace=False)
    return np.isin(groups, test_groups)


def _r2(y: np.ndarray, y_hat: np.ndarray) -> float:
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - y_hat) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")


def ridge_probe(X, y, groups, alpha: float = 1e-3, test_frac: float = 0.25, seed: int = 0) -> RidgeFit:
    """Ridge regression of ``y [N]`` on ``X [N, d]``, trained on some documents and scored on the others.

    ``alpha`` is relative: the penalty is ``alpha * trace(X^T X) / d`` on centred data, so one value works
    for activations of any scale.
    """
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(X) != len(y) or len(y) != len(groups):
        raise ValueError("X, y and groups must have the same number of rows")
    test = split_by_group(np.asarray(groups), test_frac, seed)
    tr = ~test
    if tr.sum() < 2 or test.sum() < 1:
        raise UserError(f"too few rows for a held-out probe ({tr.sum()} train, {test.sum()} test)")
    mu, ym = X[tr].mean(0), y[tr].mean()
    Xc = X[tr] - mu
    G = Xc.T @ Xc
    lam = alpha * np.trace(G) / max(G.shape[0], 1)
    w = np.linalg.solve(G + lam * np.eye(G.shape[0]) + 1e-12 * np.eye(G.shape[0]), Xc.T @ (y[tr] - ym))
    b = ym - mu @ w
    pred = X @ w + b
    return RidgeFit(r2_train=_r2(y[tr], pred[tr]), r2_test=_r2(y[test], pred[test]),
                    rmse_test=float(np.sqrt(np.mean((y[test] - pred[test]) ** 2))),
                    weight=w, bias=float(b), alpha=alpha, n_train=int(tr.sum()), n_test=int(test.sum()))


def _multinomial_logistic(X: np.ndarray, y: np.ndarray, n_classes: int, C: float, max_iter: int):
    """Softmax regression by full-batch L-BFGS: minimises the mean cross-entropy plus ``|W|^2 / (2 C N)``
    (scikit-learn's scaling of ``C``). Returns ``(W [V, d], b [V])``.

    The parameters, the loss, the softmax and the optimiser's state are float64, so the optimiser's path does
    not depend on float32 rounding in its own arithmetic; only the two products with the rows (``X @ W`` and
    ``X^T (P - Y)``, nearly all the time) run in float32, where a CPU multiplies about four times faster. The
    rows are float32 activations and standardised, so a product's relative error (about ``1e-7 sqrt(d)``)
    sits far below what a held-out probe can resolve. The gradient is written out, not taken by autograd."""
    import torch

    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    rows, N = torch.arange(len(X)), len(X)
    yt = torch.from_numpy(y)
    W = torch.zeros(X.shape[1], n_classes, dtype=torch.float64)
    b = torch.zeros(n_classes, dtype=torch.float64)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, history_size=20, tolerance_grad=1e-7,
                            tolerance_change=1e-10, line_search_fn="strong_wolfe")

    def closure():
        logits = (Xt @ W.float()).double() + b
        lse = torch.logsumexp(logits, 1)
        loss = (lse - logits[rows, yt]).mean() + (W ** 2).sum() / (2 * C * N)
        G = torch.exp(logits - lse[:, None])  # d loss / d logits = (softmax - one-hot) / N
        G[rows, yt] -= 1
        G /= N
        W.grad = (Xt.T @ G.float()).double() + W / (C * N)
        b.grad = G.sum(0)
        return loss
    opt.step(closure)
    return W.numpy().T.copy(), b.numpy().copy()


def value_probes(X, values, groups, keep=None, C: float = 1.0, max_rows: int = 20000, max_iter: int = 300,
                 test_frac: float = 0.25, seed: int = 0) -> ValueProbes:
    """One logistic probe per label value (a multinomial logistic regression), held out by document.

    ``keep`` optionally lists the values to model (default: all present); rows with other values are dropped.
    At most ``max_rows`` training rows are used (a seeded sample). Features are standardised for the fit and
    the weights mapped back, so ``weights`` act on raw activations.
    """
    X, values, groups = np.asarray(X, dtype=np.float64), np.asarray(values), np.asarray(groups)
    if keep is not None:
        m = np.isin(values, keep)
        X, values, groups = X[m], values[m], groups[m]
    test = split_by_group(groups, test_frac, seed)
    tr = np.flatnonzero(~test)
    rng = np.random.default_rng(seed)
    if len(tr) > max_rows:
        tr = np.sort(rng.choice(tr, size=max_rows, replace=False))
    classes = np.unique(values[tr])
    if len(classes) < 2:
        raise UserError("value probes need at least 2 distinct values in the training documents")
    mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-8
    coef, icpt = _multinomial_logistic((X[tr] - mu) / sd, np.searchsorted(classes, values[tr]), len(classes),
                                       C, max_iter)
    W = coef / sd
    b = icpt - W @ mu
    te = np.flatnonzero(test)
    pred = classes[np.argmax(X[te] @ W.T + b, axis=1)]
    err = pred.astype(np.float64) - values[te]
    return ValueProbes(values=classes, weights=W, bias=b, rmse_test=float(np.sqrt(np.mean(err ** 2))),
                       accuracy_test=float(np.mean(err == 0)), n_train=len(tr), n_test=len(te))
