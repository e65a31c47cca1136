"""Probes and count-manifold geometry for every captured layer: the numbers behind ``linebreak probe``.

For each residual site and layer (plus the embedding, ``blocks.0.hook_resid_pre``, when captured):

* ridge probes with held-out R^2 for the character count (word tokens), the width of the line just ended
  (at newline tokens, where it is known), the characters remaining and the wrap width (word tokens from the
  second line on, where the width can be inferred);
* one logistic probe per count value, with RMSE in characters;
* the count manifold: per-count centroids of space-prefixed word tokens (line-initial tokens excluded; by
  default each token identity's mean subtracted, so what the token *is* does not masquerade as where it
  is), their PCA, the cosine matrices of centroids and of probe vectors with their ringing numbers, the
  Fourier spectrum beside PCA, a helix fit and the width of the similarity peak.

:func:`analyse` returns a dict: JSON-ready numbers under ``"layers"`` and the arrays (probe weights,
centroids) under ``"tensors"``; :func:`save_analysis` writes them as ``analysis.json`` and
``probes.safetensors`` (the QK stage reuses the probe weights from there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from linebreak.capture.activations import hook_name
from linebreak.io import UserError, save_json, save_tensors
from linebreak.probe import manifold as M
from linebreak.probe.estimators import ridge_probe, value_probes

MARKER = "analysis.json"


@dataclass(frozen=True)
class ProbeConfig:
    sites: str = field(default="resid_post", metadata={"help": "comma list of residual sites to analyse"})
    min_per_count: int = field(default=20, metadata={"help": "tokens needed per count for a centroid"})
    subtract_token_mean: bool = field(default=True, metadata={"help": "remove each token identity's mean"})
    alpha: float = field(default=1e-3, metadata={"help": "relative ridge penalty"})
    value_probe_rows: int = field(default=10000, metadata={"help": "training rows for per-count probes"})
    value_probe_iters: int = field(default=100, metadata={"help": "L-BFGS iterations of per-count probes"})
    test_frac: float = field(default=0.25, metadata={"help": "share of documents held out"})
    seed: int = 0


def _entries(acts, cfg: ProbeConfig) -> list[tuple[str, int]]:
    sites = [s.strip() for s in cfg.sites.split(",") if s.strip()]
    bad = [s for s in sites if s not in ("resid_pre", "resid_mid", "resid_post", "ln1")]
    if bad:
        raise UserError(f"probe sites must be resid_pre, resid_mid, resid_post or ln1, got {bad}")
    out = [("resid_pre", 0)] if hook_name("resid_pre", 0) in acts.acts and "resid_pre" not in sites else []
    out += [(s, L) for s in sites for L in acts.layers(s)]
    if not out:
        raise UserError(f"no activations captured for sites {cfg.sites!r}")
    return out


def _ridge(X, y, groups, cfg, what):
    if len(y) < 10 or len(np.unique(groups)) < 2:
        return {"r2_test": None, "note": f"too few rows for {what} ({len(y)})"}, None
    r = ridge_probe(X, y, groups, alpha=cfg.alpha, test_frac=cfg.test_frac, seed=cfg.seed)
    return {"r2_test": r.r2_test, "r2_train": r.r2_train, "rmse_test": r.rmse_test, "n_train": r.n_train,
            "n_test": r.n_test}, r


def _geometry(C: np.ndarray, values: np.ndarray) -> dict:
    cos = M.cosine_matrix(C)
    ring = M.ringing(cos)
    pca = M.pca_spectrum(C)
    fv = M.fourier_vs_pca(C)
    return {"pca": {k: pca[k] for k in ("ratio", "top3", "top6", "top10", "dim95")},
            "ringing": {k: v for k, v in ring.items() if k != "profile"}, "lag_profile": ring["profile"],
            "peak_width": M.peak_width(cos),
            "fourier": {k: v for k, v in fv.items() if k != "power"},
            "helix": M.helix_fit(C, values)}


def analyse_layer(X: np.ndarray, labels: dict, cfg: ProbeConfig = ProbeConfig()) -> tuple[dict, dict]:
    """All probes and geometry for one activation matrix ``X [N, d]``: ``(numbers, arrays)``."""
    X = np.asarray(X, dtype=np.float64)
    g = labels["doc"]
    words = M.word_rows(labels)
    later = words & (labels["line_index"] >= 1)
    nl = np.asarray(labels["is_newline"], dtype=bool) & (labels["line_len"] >= 0)
    res, arrays = {"probes": {}}, {}
    for name, rows, y in (("count", words, labels["count"]), ("line_width", nl, labels["line_len"]),
                          ("remaining", later, labels["remaining"]), ("width", later, labels["width"])):
        res["probes"][name], r = _ridge(X[rows], y[rows], g[rows], cfg, name)
        if r is not None:
            arrays[f"{name}.weight"], arrays[f"{name}.bias"] = r.weight, np.array([r.bias])
    Xw, cw = X[words], labels["count"][words]
    if cfg.subtract_token_mean:
        Xw = M.subtract_token_mean(Xw, labels["token"][words])
    values, C = M.centroids(Xw, cw, min_per_value=cfg.min_per_count)
    res["counts"] = {"min": int(values.min()), "max": int(values.max()), "n": len(values),
                     "tokens": int(np.isin(cw, values).sum())}
    res["centroids"] = _geometry(C, values)
    vp = value_probes(X[words], cw, g[words], keep=values, max_rows=cfg.value_probe_rows,
                      max_iter=cfg.value_probe_iters,
                      test_frac=cfg.test_frac, seed=cfg.seed)
    res["count_probes"] = {"rmse_test": vp.rmse_test, "accuracy_test": vp.accuracy_test,
                           "n_train": vp.n_train, "n_test": vp.n_test}
    if len(vp.values) == len(values):
        res["count_probes"] |= _geometry(vp.weights, vp.values)
    arrays |= {"count_probes.weight": vp.weights, "count_probes.bias": vp.bias,
               "count_probes.values": vp.values, "centroids": C, "centroids.values": values,
               "centroids.pcs": M.pca_spectrum(C)["coords"]}
    return res, arrays


def analyse(acts, cfg: ProbeConfig = ProbeConfig(), progress: bool = True) -> dict:
    """Probes and manifold geometry for every analysed site and layer of ``acts`` (see module doc).

    Returns ``{"config", "capture", "layers": {"resid_post.2": {...}, ...}, "tensors": {name: array}}``;
    tensor names are ``"{site}.{layer}.{what}"`` (e.g. ``resid_post.2.count_probes.weight [V, d]``).
    """
    from linebreak.progress import bar

    info = {k: acts.meta.get(k) for k in ("arch", "n_rows", "n_docs", "model")}
    out = {"config": asdict(cfg), "capture": info, "layers": {}, "tensors": {}}
    for site, L in bar(_entries(acts, cfg), desc="probe", unit="layer", disable=not progress):
        key = f"{site}.{L}"
        res, arrays = analyse_layer(acts.get(site, L).float().numpy(), acts.labels, cfg)
        out["layers"][key] = {"site": site, "layer": L, "hook": hook_name(site, L)} | res
        out["tensors"] |= {f"{key}.{k}": v for k, v in arrays.items()}
    return out


def save_analysis(result: dict, out_dir: str | Path) -> Path:
    """``probes.safetensors`` (probe weights, centroids) then ``analysis.json`` (the numbers; the marker)."""
    out_dir = Path(out_dir)
    save_tensors(out_dir / "probes.safetensors",
                 {k: np.ascontiguousarray(v, dtype=np.float32 if v.dtype.kind == "f" else np.int64)
                  for k, v in result["tensors"].items()})
    save_json(out_dir / MARKER, {k: v for k, v in result.items() if k != "tensors"})
    return out_dir


ROW = [("R2 count", lambda r: r["probes"]["count"]["r2_test"]),
       ("R2 nl-width", lambda r: r["probes"]["line_width"]["r2_test"]),
       ("R2 remain", lambda r: r["probes"]["remaining"]["r2_test"]),
       ("RMSE", lambda r: r["count_probes"]["rmse_test"]),
       ("top3", lambda r: r["centroids"]["pca"]["top3"]),
       ("top6", lambda r: r["centroids"]["pca"]["top6"]),
       ("sign chg", lambda r: r["centroids"]["ringing"]["sign_changes"]),
       ("1st neg", lambda r: r["centroids"]["ringing"]["first_negative"]),
       ("2nd pos", lambda r: r["centroids"]["ringing"]["second_positive"]),
       ("helix T", lambda r: ",".join(str(t) for t in r["centroids"]["helix"]["periods"]) or "-"),
       ("helix R2", lambda r: r["centroids"]["helix"]["r2_helix"]),
       ("line R2", lambda r: r["centroids"]["helix"]["r2_line"]),
       ("peak w", lambda r: r["centroids"]["peak_width"])]


def table(results: dict[str, dict]) -> str:
    """A terminal table, one row per (run, layer); ``results`` maps a run (model, control) to analyse()."""
    def fmt(v):
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
    head = f"{'run':<8}{'layer':<14}" + "".join(f"{h:>12}" for h, _ in ROW)
    lines = [head, "-" * len(head)]
    for run, res in results.items():
        for key, r in res["layers"].items():
            lines.append(f"{run:<8}{key:<14}" + "".join(f"{fmt(f(r)):>12}" for _, f in ROW))
    return "\n".join(lines)
