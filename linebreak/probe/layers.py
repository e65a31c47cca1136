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

:func:`analyse` returns a :class:`~linebreak.probe.result.ProbeResult` (numbers per layer, arrays in its
``tensors``); :func:`~linebreak.probe.result.save_probe` writes ``probe.json`` and ``probes.safetensors``.
:func:`probe_folder` is the whole ``linebreak probe`` command: a capture folder (and its control) in, results
out; :func:`table` is its terminal table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linebreak.hooks.points import hook_name
from linebreak.io import UserError
from linebreak.probe import manifold as M
from linebreak.probe.config import ProbeConfig
from linebreak.probe.estimators import ridge_probe, value_probes
from linebreak.probe.result import (
    MARKER,
    CountProbes,
    Counts,
    Fourier,
    Geometry,
    Helix,
    Pca,
    ProbeLayer,
    ProbeResult,
    RidgeScores,
    Ringing,
    save_probe,
)

DEFAULT = ProbeConfig()


def _entries(acts, cfg: ProbeConfig) -> list[tuple[str, int]]:
    # what attention reads: ln1, or resid_pre where the model has no norm before attention (OLMo-2)
    reads = acts.meta.get("attention_input_site", "ln1")
    sites = list(dict.fromkeys(reads if s == "ln1" else s for s in cfg.sites))
    out = [("resid_pre", 0)] if hook_name("resid_pre", 0) in acts.acts and "resid_pre" not in sites else []
    out += [(s, L) for s in sites for L in acts.layers(s)]
    if not out:
        raise UserError(f"no activations captured for sites {','.join(cfg.sites)}")
    return out


def _ridge(X, y, groups, cfg, what):
    if len(y) < 10 or len(np.unique(groups)) < 2:
        return RidgeScores(r2_test=None, note=f"too few rows for {what} ({len(y)})"), None
    r = ridge_probe(X, y, groups, alpha=cfg.alpha, test_frac=cfg.test_frac, seed=cfg.seed)
    return RidgeScores(r2_test=r.r2_test, r2_train=r.r2_train, rmse_test=r.rmse_test, n_train=r.n_train,
                       n_test=r.n_test), r


def _pick(cls, d: dict):
    """``cls`` from the entries of ``d`` that are its fields (the analysis functions return a few more)."""
    return cls(**{f: d[f] for f in cls.__dataclass_fields__})


def geometry(C: np.ndarray, values: np.ndarray) -> Geometry:
    """PCA, ringing, peak width, Fourier spectrum and helix fit of per-value vectors ``C [V, d]``."""
    cos = M.cosine_matrix(C)
    ring = M.ringing(cos)
    return Geometry(pca=_pick(Pca, M.pca_spectrum(C)), ringing=_pick(Ringing, ring), lag_profile=ring["profile"],
                    peak_width=M.peak_width(cos), fourier=_pick(Fourier, M.fourier_vs_pca(C)),
                    helix=_pick(Helix, M.helix_fit(C, values)))


def analyse_layer(X: np.ndarray, labels: dict, cfg: ProbeConfig = DEFAULT, site: str = "resid_post",
                  layer: int = 0) -> tuple[ProbeLayer, dict]:
    """All probes and geometry for one activation matrix ``X [N, d]``: ``(numbers, arrays)``."""
    X = np.asarray(X, dtype=np.float64)
    g = labels["doc"]
    words = M.word_rows(labels)
    later = words & (labels["line_index"] >= 1)
    nl = np.asarray(labels["is_newline"], dtype=bool) & (labels["line_len"] >= 0)
    if "over_long" in labels:  # a line longer than the width (a URL standing alone) is no sample of the width
        nl &= ~np.asarray(labels["over_long"], dtype=bool)
    probes, arrays = {}, {}
    for name, rows, y in (("count", words, labels["count"]), ("line_width", nl, labels["line_len"]),
                          ("remaining", later, labels["remaining"]), ("width", later, labels["width"])):
        probes[name], r = _ridge(X[rows], y[rows], g[rows], cfg, name)
        if r is not None:
            arrays[f"{name}.weight"], arrays[f"{name}.bias"] = r.weight, np.array([r.bias])
    Xw, cw = X[words], labels["count"][words]
    if cfg.subtract_token_mean:
        Xw = M.subtract_token_mean(Xw, labels["token"][words])
    values, C = M.centroids(Xw, cw, min_per_value=cfg.min_per_count)
    counts = Counts(min=int(values.min()), max=int(values.max()), n=len(values),
                    tokens=int(np.isin(cw, values).sum()))
    centroids = geometry(C, values)
    vp = value_probes(X[words], cw, g[words], keep=values, max_rows=cfg.value_probe_rows,
                      max_iter=cfg.value_probe_iters, test_frac=cfg.test_frac, seed=cfg.seed)
    shape = vars(geometry(vp.weights, vp.values)) if len(vp.values) == len(values) else {}  # every count probed
    cp = CountProbes(rmse_test=vp.rmse_test, accuracy_test=vp.accuracy_test, n_train=vp.n_train, n_test=vp.n_test,
                     **shape)
    arrays |= {"count_probes.weight": vp.weights, "count_probes.bias": vp.bias,
               "count_probes.values": vp.values, "centroids": C, "centroids.values": values,
               "centroids.pcs": M.pca_spectrum(C)["coords"]}
    return ProbeLayer(site=site, layer=layer, hook=hook_name(site, layer), probes=probes, counts=counts,
                      centroids=centroids, count_probes=cp), arrays


def analyse(acts, cfg: ProbeConfig = DEFAULT, progress: bool = True) -> ProbeResult:
    """Probes and manifold geometry for every analysed site and layer of ``acts`` (see module doc).

    ``layers`` is keyed ``"{site}.{layer}"``; tensor names are ``"{site}.{layer}.{what}"`` (e.g.
    ``resid_post.2.count_probes.weight [V, d]``).
    """
    from linebreak.progress import bar

    info = {k: acts.meta.get(k) for k in ("arch", "n_rows", "n_docs", "model")}
    out = ProbeResult(config=cfg, capture=info, layers={})
    for site, L in bar(_entries(acts, cfg), desc="probe", unit="layer", disable=not progress):
        key = f"{site}.{L}"
        out.layers[key], arrays = analyse_layer(acts.get(site, L).float().numpy(), acts.labels, cfg, site, L)
        out.tensors |= {f"{key}.{k}": v for k, v in arrays.items()}
    return out


def probe_folder(acts_dir: str | Path, out_dir: str | Path | None = None, cfg: ProbeConfig = DEFAULT,
                 force: bool = False) -> dict[str, ProbeResult]:
    """``linebreak probe``: analyse the capture in ``acts_dir`` (and its ``control/`` capture, if any) into
    ``out_dir`` (default: ``acts_dir``; the control into ``out_dir/control``). Returns ``{run: result}``."""
    from linebreak.capture.store import MARKER as CAPTURED
    from linebreak.capture.store import load_activations
    from linebreak.io import prepare_out_dir

    src = Path(acts_dir)
    out = Path(out_dir) if out_dir else src
    runs = {"model": (src, out)}
    if (src / "control" / CAPTURED).is_file():
        runs["control"] = (src / "control", out / "control")
    for _, dst in runs.values():
        prepare_out_dir(dst, force, MARKER)
    results = {}
    for name, (s, dst) in runs.items():
        results[name] = analyse(load_activations(s), cfg)
        save_probe(results[name], dst)
    return results


def _undefined(v) -> bool:
    return v is None or isinstance(v, float) and v != v  # NaN: JSON null, read back as NaN


ROW = [("R2 count", lambda r: r.probes["count"].r2_test),
       ("R2 nl-width", lambda r: r.probes["line_width"].r2_test),
       ("R2 remain", lambda r: r.probes["remaining"].r2_test),
       ("RMSE", lambda r: r.count_probes.rmse_test),
       ("top3", lambda r: r.centroids.pca.top3),
       ("top6", lambda r: r.centroids.pca.top6),
       ("sign chg", lambda r: r.centroids.ringing.sign_changes),
       ("1st neg", lambda r: r.centroids.ringing.first_negative),
       ("2nd pos", lambda r: r.centroids.ringing.second_positive),
       ("helix T", lambda r: ",".join(str(t) for t in r.centroids.helix.periods) or "-"),
       ("helix R2", lambda r: r.centroids.helix.r2_helix),
       ("line R2", lambda r: r.centroids.helix.r2_line),
       ("peak w", lambda r: r.centroids.peak_width)]


def table(results: dict[str, ProbeResult]) -> str:
    """A terminal table, one row per (run, layer); ``results`` maps a run (model, control) to its result."""
    def fmt(v):
        return "-" if _undefined(v) else (f"{v:.3f}" if isinstance(v, float) else str(v))
    head = f"{'run':<8}{'layer':<14}" + "".join(f"{h:>12}" for h, _ in ROW)
    lines = [head, "-" * len(head)]
    for run, res in results.items():
        for key, r in res.layers.items():
            lines.append(f"{run:<8}{key:<14}" + "".join(f"{fmt(f(r)):>12}" for _, f in ROW))
    return "\n".join(lines)
