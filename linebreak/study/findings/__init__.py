"""Turn the study's stage results into findings, figures and the report (one module per stage)."""

from __future__ import annotations

import time
from pathlib import Path

from linebreak.study.findings.causal import causal_findings
from linebreak.study.findings.common import _num
from linebreak.study.findings.grok import grok_findings
from linebreak.study.findings.probe import _best_layer, manifold_findings
from linebreak.study.findings.qk import qk_findings
from linebreak.study.findings.training import training_findings
from linebreak.study.report import Finding, write_report


def _figures(out: Path, res: dict) -> dict:
    """Draw the study's figures into ``out/figures``; returns {kind: relative path of the headline one}."""
    from linebreak.commands.plot import layer_figures
    from linebreak.io import load_json, load_tensors

    figdir = out / "figures"
    figs: dict[str, str] = {}
    rel = lambda p: str(Path(p).relative_to(out))  # noqa: E731
    if "manifold" in res:
        from linebreak.plots.curves import r2_by_layer

        runs = {}
        for run, sub in (("model", ""), ("control", "control")):
            d = res["manifold"].path / sub
            if (d / "analysis.json").is_file():
                runs[run] = (load_json(d / "analysis.json"),
                             {k: v.numpy() for k, v in load_tensors(d / "probes.safetensors").items()})
        model = runs["model"][0]["layers"]
        key = _best_layer(model)
        files = layer_figures(key, model[key], runs["model"][1], "model", figdir)
        if "control" in runs:
            layer_figures(key, runs["control"][0]["layers"][key], runs["control"][1], "control", figdir)
        figs["helix"] = rel(next(f for f in files if "helix_pc123" in str(f) and str(f).endswith(".html")))
        figs["similarity"] = rel(next(f for f in files if "similarity_centroids" in str(f)))
        figs["r2"] = rel(r2_by_layer({k: v[0] for k, v in runs.items()},
                                     "Held-out R^2 of linear probes by layer (model vs random-init control)",
                                     figdir / "probe_r2_by_layer"))
    if "qk" in res:
        from linebreak.plots.qk import plot_qk

        q = load_json(res["qk"].path / "qk.json")
        files = plot_qk(q, figdir)
        figs["qk_matrices"] = next((rel(f) for f in files if "matrices" in str(f)), None)
        best = f"qk_logits_{q['verdict']['best_head']}.png"
        figs["qk_logits"] = next((rel(f) for f in files if f.name == best), None)
        figs["qk_pca"] = next((rel(f) for f in files if str(f).endswith(".html")), None)
    if "grok" in res:
        curves = res["grok"].path / "figures" / "grok_curves.png"
        figs["grok"] = rel(curves) if curves.is_file() else None
    return figs


def _appendix(res: dict) -> dict[str, str]:
    """Tables for the reader who wants more than the headline: geometry per layer, the top-ranked heads."""
    out = {}
    if "manifold" in res:
        from linebreak.probe.layers import table

        runs = {k: {"layers": v} for k, v in res["manifold"].summary.items()}
        out["Probes and geometry per layer (model beside its random-init control)"] = f"```\n{table(runs)}\n```"
    if "qk" in res:
        rows = ["| head | score | QK max cos | identity | control | slope | R^2 | median eps | response range |"
                " passes |", "|---" * 10 + "|"]
        n = _num
        for h in res["qk"].summary["heads"][:8]:
            q = h["qk"]
            cells = [h["name"], n(h["score"], ".2f"), n(q["max_cos"], ".2f"), n(h["identity"]["max_cos"], ".2f"),
                     n(h["control"]["max_cos"], ".2f"), n(q["slope"], ".2f"), n(q["r2"], ".2f"), n(q["median"], "+.1f"),
                     n((h.get("response") or {}).get("range"), ".3f"), str(h["verdict"]["passes"])]
            rows.append("| " + " | ".join(cells) + " |")
        out["Top-ranked heads (QK twist)"] = "\n".join(rows)
    return out


def build_report(out: Path, cfg, sp, res: dict, wall_s: float) -> dict:
    """Figures, findings and ``report.json`` / ``report.md`` for a finished study."""
    import dataclasses

    t0 = time.perf_counter()
    figs = _figures(out, res)
    findings: list[Finding] = []
    makers = {"model": lambda x: training_findings(x), "manifold": lambda x: manifold_findings(x, figs),
              "qk": lambda x: qk_findings(x, figs), "causal": lambda x: causal_findings(x, figs),
              "grok": lambda x: grok_findings(x, figs)}
    for stage, make in makers.items():
        if stage not in res:
            continue
        try:
            findings += make(res[stage].summary)
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
    sections = {k: r.summary for k, r in res.items() if k in ("corpus", "model", "qk", "causal", "grok")}
    if "manifold" in res:
        sections["manifold"] = {"best_layer": _best_layer(res["manifold"].summary["model"]),
                                **res["manifold"].summary}
    intro = ("Each finding states what this run measured, beside its anchor in the literature "
             "(Gurnee et al. 2025 for Claude 3.5 Haiku; Nanda et al. 2023 for grokking), and says plainly "
             "whether this model agrees.")
    write_report(out, "linebreak study report", findings, sections, stages, settings, intro, _appendix(res))
    from linebreak.io import load_json

    return load_json(out / "report.json")
