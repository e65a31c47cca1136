"""Turn the study's typed stage results into findings, figures and the report (one findings module per stage).

Each stage's :class:`~linebreak.study.stages.StageResult` carries its typed result (``.result``): the model
stage's :class:`~linebreak.train.result.TrainMetrics`, the probe stage's
:class:`~linebreak.study.line_stages.ProbeRuns` (the model's :class:`~linebreak.probe.result.ProbeResult`
beside its control's), the qk, causal and grok results. The findings modules read their attributes; the
report's ``sections`` hold each stage's JSON (the probe section keeps its per-layer layout, ``model`` and
``control`` by layer, plus ``best_layer``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from linebreak.study.findings.causal import causal_findings
from linebreak.study.findings.common import _num
from linebreak.study.findings.grok import grok_findings
from linebreak.study.findings.probe import best_layer, probe_findings
from linebreak.study.findings.qk import qk_findings
from linebreak.study.findings.training import training_findings
from linebreak.study.report import Finding, write_report

SECTION_STAGES = ("corpus", "model", "probe", "qk", "causal", "grok")


def _probe_runs(res: dict) -> dict:
    """``{"model": ProbeResult, "control": ProbeResult}`` of the probe stage (control only if there is one)."""
    runs = res["probe"].result
    return {"model": runs.model} | ({"control": runs.control} if runs.control is not None else {})


def _ringing_gate(model, control) -> dict | None:
    """The gated ringing numbers (:func:`linebreak.probe.ringing.compare`) of the model's per-count means at
    its best layer beside the control's, in the count window both cover (None without a control). ``model``
    and ``control`` are probe results with their arrays (the centroids are not in the JSON)."""
    from linebreak.probe.ringing import compare

    key = best_layer(model)
    if control is None or f"{key}.centroids" not in control.tensors:
        return None
    m, c = model.tensors, control.tensors
    return compare(m[f"{key}.centroids"], m[f"{key}.centroids.values"], c[f"{key}.centroids"],
                   c[f"{key}.centroids.values"], probe_r2=model.layers[key].probes["count"].r2_test)


def _figures(out: Path, res: dict, arrays: tuple | None) -> dict:
    """Draw the study's figures into ``out/figures``; returns {kind: relative path of the headline one}.
    ``arrays``: the probe stage's model and control results with their arrays (None without that stage)."""
    figdir = out / "figures"
    figs: dict[str, str] = {}
    rel = lambda p: str(Path(p).relative_to(out))  # noqa: E731
    if arrays is not None:
        from linebreak.plots.curves import r2_by_layer
        from linebreak.plots.layers import layer_figures

        model, control = arrays
        key = best_layer(model)
        files = layer_figures(model, key, "model", figdir)
        if control is not None:
            layer_figures(control, key, "control", figdir)
        figs["helix"] = rel(next(f for f in files if "helix_pc123" in str(f) and str(f).endswith(".html")))
        figs["similarity"] = rel(next(f for f in files if "similarity_centroids" in str(f)))
        figs["r2"] = rel(r2_by_layer(_probe_runs(res),
                                     "Held-out R^2 of linear probes by layer (model vs random-init control)",
                                     figdir / "probe_r2_by_layer"))
    if "qk" in res:
        from linebreak.plots.qk import plot_qk

        q = res["qk"].result
        files = plot_qk(q, figdir)
        figs["qk_matrices"] = next((rel(f) for f in files if "matrices" in str(f)), None)
        best = f"qk_logits_{q.verdict.best_head}.png"
        figs["qk_logits"] = next((rel(f) for f in files if f.name == best), None)
        figs["qk_pca"] = next((rel(f) for f in files if str(f).endswith(".html")), None)
    if "grok" in res:
        curves = res["grok"].path / "figures" / "grok_curves.png"
        figs["grok"] = rel(curves) if curves.is_file() else None
    return figs


def _appendix(res: dict) -> dict[str, str]:
    """Tables for the reader who wants more than the headline: geometry per layer, the top-ranked heads."""
    out = {}
    if "probe" in res:
        from linebreak.probe.layers import table

        out["Probes and geometry per layer (model beside its random-init control)"] = \
            f"```\n{table(_probe_runs(res))}\n```"
    if "qk" in res:
        rows = ["| head | score | QK max cos | identity | control | slope | R^2 | median eps | response range |"
                " passes |", "|---" * 10 + "|"]

        n = _num
        for h in res["qk"].result.heads[:8]:
            q = h.qk
            cells = [h.name, n(h.score, ".2f"), n(q.max_cos, ".2f"), n(h.identity.max_cos, ".2f"),
                     n(h.control.max_cos, ".2f"), n(q.slope, ".2f"), n(q.r2, ".2f"), n(q.median, "+.1f"),
                     n(h.response.range if h.response is not None else None, ".3f"), str(h.verdict.passes)]
            rows.append("| " + " | ".join(cells) + " |")
        out["Top-ranked heads (QK twist)"] = "\n".join(rows)
    return out


def _undefined(findings: list[Finding]) -> bool:
    """A sentence prints a number that is not defined: a typed result reads JSON null as NaN, which formats as
    "nan" where the JSON's None made the sentence fail (TypeError) before."""
    return any(re.search(r"\bnan\b", f.sentence.lower()) for f in findings)


def build_report(out: Path, cfg, sp, res: dict, wall_s: float) -> dict:
    """Figures, findings and ``report.json`` / ``report.md`` for a finished study."""
    import dataclasses

    t0 = time.perf_counter()
    arrays = None
    if "probe" in res:  # the figures and the ringing gate read the probe arrays: load them once
        from linebreak.probe.result import load_probes

        arrays = load_probes(res["probe"].path, tensors=True)
    figs = _figures(out, res, arrays)
    findings: list[Finding] = []
    makers = {"model": lambda r: training_findings(r),
              "probe": lambda r: probe_findings(r.model, r.control, figs, _ringing_gate(*arrays)),
              "qk": lambda r: qk_findings(r, figs), "causal": lambda r: causal_findings(r, figs),
              "grok": lambda r: grok_findings(r, figs)}
    for stage, make in makers.items():
        if stage not in res:
            continue
        try:
            made = make(res[stage].result)
            if _undefined(made):
                raise TypeError
            findings += made
        except TypeError:  # a number the sentence needs was undefined (NaN, stored as null)
            findings.append(Finding(f"{stage}_undefined", stage, f"Some {stage} numbers are undefined for this "
                                    f"model (see report.json, sections.{stage}).", None))
    stages = {k: {"wall_s": r.wall_s, "reused": r.reused, "fingerprint": r.fingerprint, "path": str(r.path)}
              for k, r in res.items()}
    stages["figures_and_report"] = {"wall_s": time.perf_counter() - t0, "reused": False}
    settings = {"study": dataclasses.asdict(cfg), "preset": dataclasses.asdict(sp), "seed": cfg.seed,
                "total_wall_s": wall_s + stages["figures_and_report"]["wall_s"],
                # what the whole study costs from scratch: every stage's recorded time, reused or not
                "stages_wall_s": sum(st["wall_s"] for st in stages.values())}
    sections = {k: res[k].summary for k in SECTION_STAGES if k in res and k != "probe"}
    if "probe" in res:
        runs = _probe_runs(res)
        sections["probe"] = {"best_layer": best_layer(runs["model"]),
                             **{name: r.to_json()["layers"] for name, r in runs.items()}}
    intro = ("Each finding states what this run measured, beside its anchor in the literature "
             "(Gurnee et al. 2025 for Claude 3.5 Haiku; Nanda et al. 2023 for grokking), and says plainly "
             "whether this model agrees.")
    write_report(out, "linebreak study report", findings, sections, stages, settings, intro, _appendix(res))
    from linebreak.io import load_json

    return load_json(out / "report.json")
