"""Turn the study's stage summaries into findings, figures and the report.

Each finding carries the measured value, the rule that decides whether it agrees with its literature anchor
(``checks``: a list of ``[name, value, op, threshold]`` that must all hold), and the figure that shows it.
A test recomputes every verdict from those checks, so the words in the report cannot drift from the numbers.
"""

from __future__ import annotations

import operator
import time
from pathlib import Path

from linebreak.report import Finding, write_report

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


def check(checks: list[list]) -> bool | None:
    """All ``[name, value, op, threshold]`` hold; None if a value is missing (not measured)."""
    if any(v is None for _, v, _, _ in checks):
        return None
    return all(OPS[op](v, t) for _, v, op, t in checks)


def _f(key, section, sentence, value, anchor, checks, figure=None, **details) -> Finding:
    return Finding(key, section, sentence, value, anchor, check(checks) if checks else None, figure,
                   {"checks": checks, **details})


def _num(x, spec: str, missing: str = "-") -> str:
    """``x`` formatted with ``spec``; ``missing`` where it was not measured (NaN is stored as null in JSON)."""
    return missing if x is None else format(x, spec)


def _best_layer(layers: dict) -> str:
    """The analysed layer whose count probe has the highest held-out R^2 (where the count lives)."""
    def r2(k):
        v = layers[k]["probes"]["count"]["r2_test"]
        return -1.0 if v is None else v
    return max(layers, key=r2)


def _geom(layer: dict) -> dict:
    c = layer["centroids"]
    return {"r2": layer["probes"]["count"]["r2_test"], "top6": c["pca"]["top6"], "pc1": c["pca"]["ratio"][0],
            "sign_changes": c["ringing"]["sign_changes"], "first_negative": c["ringing"]["first_negative"],
            "second_positive": c["ringing"]["second_positive"], "helix_periods": c["helix"]["periods"],
            "helix_gain": c["helix"].get("r2_helix", 0) - c["helix"].get("r2_line", 0),
            "rmse": layer["count_probes"]["rmse_test"]}


def training_findings(m: dict) -> list[Finding]:
    s = "Newline prediction"
    return [
        _f("info_captured", s, f"The model captures {m['info_captured']:.3f} of the achievable newline "
           f"information (newline CE {m['newline_ce']:.3f} nats vs Bayes-posterior {m['newline_ce_posterior']:.3f}"
           f" and constant-rate {m['newline_ce_constant']:.3f}); target 0.95.", m["info_captured"], None,
           [["info_captured", m["info_captured"], ">=", 0.95]]),
        _f("forced_break_acc", s, f"Where the break is knowable (no word fits under any width consistent with the "
           f"earlier lines) the model breaks the line {100 * m['forced_break_acc_knowable']:.1f} % of the time "
           f"({m['knowable_forced_positions']} positions); counting also first lines, where the width is not yet "
           f"known, {100 * m['forced_break_acc']:.1f} % against a Bayes ceiling of "
           f"{100 * m['forced_break_acc_bayes']:.1f} %. Where every word fits it does not break "
           f"{100 * m['no_break_acc']:.1f} % of the time; target 99 %.", m["forced_break_acc_knowable"], None,
           [["forced_break_acc_knowable", m["forced_break_acc_knowable"], ">=", 0.99]]),
    ]


def manifold_findings(summary: dict, figs: dict) -> list[Finding]:
    model, control = summary["model"], summary.get("control", {})
    key = _best_layer(model)
    g, c = _geom(model[key]), (_geom(control[key]) if key in control else None)
    ctrl = (lambda name, fmt: f" (random-init control: {fmt.format(c[name])})") if c else (lambda *_: "")
    s = "Character-count manifold"
    return [
        _f("count_probe_r2", s, f"A linear probe reads the character count with held-out R^2 {g['r2']:.3f} at "
           f"{key}{ctrl('r2', '{:.3f}')}.", g["r2"], "count_probe_r2", [["r2", g["r2"], ">=", 0.95]],
           figs.get("r2"), layer=key),
        _f("top6_pca_share", s, f"The per-count means at {key} put {100 * g['top6']:.1f} % of their variance in "
           f"the top 6 PCs and {100 * g['pc1']:.1f} % in PC1 alone{ctrl('pc1', 'PC1 {:.3f}')}; a helix-like "
           "manifold needs both: >= 90 % in 6 PCs with PC1 < 70 %.", g["top6"], "top6_pca_share",
           [["top6", g["top6"], ">=", 0.9], ["pc1", g["pc1"], "<", 0.7]], figs.get("helix"), layer=key),
        _f("ringing_sign_changes", s, f"The similarity between counts changes sign {g['sign_changes']} time(s) "
           f"along the off-diagonals (first negative lobe {g['first_negative']:.2f}, next positive lobe "
           f"{g['second_positive']:.2f}){ctrl('sign_changes', '{} sign change(s)')}.", g["sign_changes"],
           "ringing_sign_changes", [["sign_changes", g["sign_changes"], ">=", 2]], figs.get("similarity"),
           layer=key),
        _f("helix_fit", s, f"A helix fit (line plus cos/sin of period T) picks periods {g['helix_periods']} and "
           f"improves R^2 over the straight line by {g['helix_gain']:.3f}.", g["helix_gain"], None, [],
           figs.get("helix"), layer=key),
    ]


def qk_findings(q: dict, figs: dict) -> list[Finding]:
    v = q["verdict"]
    b = v["best"]
    s = "Boundary heads and the QK twist"
    return [
        _f("qk_verdict", s, v["statement"] + ".", v["passes"], "qk_max_cos",
           [["best head passes the verdict", int(v["passes"]), "==", 1]], figs.get("qk_matrices"),
           best_head=v["best_head"]),
        _f("qk_max_cos", s, f"Through the best head's QK ({v['best_head']}) count and width align with max "
           f"cosine {b['qk']['max_cos']:.3f}; with the identity map (raw residual) {b['identity']['max_cos']:.3f};"
           f" with a random control {b['control']['max_cos']:.3f}.", b["qk"]["max_cos"], "qk_max_cos",
           [["max_cos", b["qk"]["max_cos"], ">=", 0.8], ["gain over control", b["gain_over_control"], ">=", 0.1]],
           figs.get("qk_pca")),
        _f("raw_max_cos", s, f"In the raw residual stream (identity map) the best count-width cosine is "
           f"{b['identity']['max_cos']:.3f}; averaged over counts, each count's best-matching width has cosine "
           f"{b['identity']['alignment']:.3f} there against {b['qk']['alignment']:.3f} through the head's QK: "
           f"the identity {'aligns worse' if v['identity_worse_than_head'] else 'does not align worse'} than the "
           "head.",
           b["identity"]["max_cos"], "raw_max_cos",
           [["identity worse than head", int(v["identity_worse_than_head"]), "==", 1]]),
        _key_side_finding(q, s),
    ] + ([_comparison_finding(q, s, figs)] if "comparison" in q["heads"][0] else []) + (
        [_probe_finding(v["probes"], s)] if v.get("probes") else [])


def _probe_finding(p: dict, section: str) -> Finding:
    """The same verdict with the paper's sides: logistic probes per count and per width (linebreak.qk)."""
    fits = [f for f in p["fits"] if f["count_rmse"] is not None]  # NaN is stored as null in JSON
    fit = min(fits, key=lambda f: f["count_rmse"]) if fits else None
    rmse = (f" The count probes' held-out RMSE is {fit['count_rmse']:.1f} characters at their best layer "
            f"(L{fit['layer']}).") if fit else ""
    return _f("qk_probe_route", section, f"With logistic value probes as the two sides (the paper's route), "
              f"{p['statement'].removeprefix('probe route: ')}.{rmse}", int(p["passes"]), None,
              [["best head passes the verdict (probe route)", int(p["passes"]), "==", 1]],
              best_head=p["best_head"])


def _comparison_finding(q: dict, section: str, figs: dict) -> Finding:
    """How the heads compare count with width: the share of each head's mean attention logit over the
    (count, width) grid that is additive (a count effect plus a width effect) or an interaction (what a twist
    carries, and all the cosine test sees). Reported for the verdict's best head and for the head whose
    measured attention to the newline moves most; descriptive, with no threshold of its own."""
    from linebreak.qk import response_range

    best = next(h for h in q["heads"] if h["name"] == q["verdict"]["best_head"])
    moving = max(q["heads"], key=response_range)
    top = max(q["heads"], key=lambda h: h["comparison"]["interaction_share"] or 0.0)

    def split(h):
        c = h["comparison"]
        return (f"{h['name']} {_num(c['count_share'], '.1%')} query side (count), {_num(c['width_share'], '.1%')} "
                f"key side (width), {_num(c['interaction_share'], '.1%')} interaction")
    return _f("qk_comparison", section,
              f"How the heads compare count with width (variance of the mean attention logit over the count x "
              f"width grid; a twist is all interaction, subtraction on ramps all additive, a head gated by what the "
              f"query alone knows all query side): best twist head "
              f"{split(best)}; the head whose attention to the newline moves most "
              f"(range {_num(moving['response']['range'], '.2f')}, peak at "
              f"{moving['response']['peak_remaining']} characters remaining) {split(moving)}. The largest "
              f"interaction share of any head is {_num(top['comparison']['interaction_share'], '.1%')} "
              f"({top['name']}).", best["comparison"]["interaction_share"], None, [], figs.get("qk_logits"),
              best_head=best["name"], most_responsive=moving["name"])


def _key_side_finding(q: dict, section: str) -> Finding:
    """Does any head compare the count with the key's own line length (attention moves with it when the
    width and count are fixed)? Reported for the best twist head and listed for all heads."""
    best = next(h for h in q["heads"] if h["name"] == q["verdict"]["best_head"])
    ks = best.get("key_side") or {}
    moving = [h["name"] for h in q["heads"] if (h.get("key_side") or {}).get("moves")]

    def n(x, spec):
        return _num(x, spec, "n/a")
    return _f("qk_key_side", section,
              f"Key-side comparison test: with width and count held fixed, the earlier line's length explains "
              f"{n(ks.get('excess'), '+.3f')} of {best['name']}'s attention variance beyond shuffled lengths "
              f"(p = {n(ks.get('p_value'), '.3f')}, correlation {n(ks.get('corr'), '+.2f')}). Heads whose attention "
              f"moves with the key: {', '.join(moving) if moving else 'none'}. Queries were read "
              f"{q.get('query_frame', 'from the weights')}.",
              ks.get("excess"), None, [["heads moving with the key", len(moving), ">=", 1]], moving=moving)


def causal_findings(c: dict, figs: dict) -> list[Finding]:
    sub, pat = c["subspace_ablation"], c["patching"]
    s = "Causal checks"
    ratio = sub["count_subspace"]["ratio"]
    heads = []
    for key, what in (("boundary_head_ablation", "the measured boundary head (largest attention response to the "
                       "previous newline as the line fills)"), ("head_ablation", "the QK-top head")):
        h = c[key]
        heads.append(_f(key, s, f"Ablating {what} {h['top_head']} raises newline loss by "
                        f"{h['top']['d_newline']:+.4f} nats and other-token loss by {h['top']['d_other']:+.4f}; a "
                        f"random head of the same layer ({h['random_head']}) raises newline loss by "
                        f"{(h['random'] or {}).get('d_newline', float('nan')):+.4f}.", h["top"]["d_newline"], None,
                        [["top head beats random head", int(h["top_beats_random"]), "==", 1]]))
    if c.get("key_ablation"):
        heads.append(_key_ablation_finding(c, s))
    return heads + [
        _f("subspace_ablation", s, f"Ablating the top-{sub['dim']} PCA subspace of the count means at layer "
           f"{sub['layer']} raises newline loss by {sub['count_subspace']['d_newline']:+.4f} and other loss by "
           f"{sub['count_subspace']['d_other']:+.4f} (ratio {ratio:.2f}); random {sub['dim']}-D subspaces: "
           f"{sub['random_mean']['d_newline']:+.4f} / {sub['random_mean']['d_other']:+.4f}.", ratio,
           "ablation_newline_ratio", [["newline/other ratio", ratio, ">=", 5.0],
                                      ["beats random", int(sub["beats_random_on_newline"]), "==", 1]]),
        _f("patching", s, f"Patching the count representation (the count effect with the width held fixed, at "
           f"layer {pat['layer']}, one token per document) from {pat['curve'][0]['delta']:+d} to "
           f"{pat['curve'][-1]['delta']:+d} characters moves P(newline) from {pat['curve'][0]['p_newline']:.3f} to "
           f"{pat['curve'][-1]['p_newline']:.3f}, Spearman {pat['spearman']:.2f} across shifts (monotone steps "
           f"{100 * pat['monotone_fraction']:.0f} %).",
           pat["spearman"], None, [["spearman", pat["spearman"], ">=", 0.8]]),
    ]


def _key_ablation_finding(c: dict, section: str) -> Finding:
    """Does the boundary head's effect run through the width at the key? Its newline keys set to their mean,
    resampled from other newlines, or resampled among newlines ending lines of the same length, against the
    head removed (descriptive: a head that compares at the key loses its effect to the first two only)."""
    name = c["boundary_head_ablation"]["top_head"]
    k = c["key_ablation"][name]
    parts = [f"{n} {_num(v['mean']['d_newline'], '+.4f')} (mean), {_num(v['resample']['d_newline'], '+.4f')} "
             f"(resampled), {_num(v['resample_same_length']['d_newline'], '+.4f')} (resampled, same line length) "
             f"nats against {_num(v['head_d_newline'], '+.4f')} for removing it" for n, v in c["key_ablation"].items()]
    share = k["key_share"]
    return _f("key_ablation", section, "Taking away what a head's keys at newlines say about their line (each set "
              "to the mean newline key, to the key of a random other newline, or to that of a random newline "
              "ending a line of the same length; the head still attends) changes newline loss by: "
              + "; ".join(parts) + ". Share of the measured boundary head's effect that runs through its keys at "
              f"newlines: {_num(share['mean'], '.2f', 'n/a')} (mean), {_num(share['resample'], '.2f', 'n/a')} "
              f"(resampled), {_num(share['resample_same_length'], '.2f', 'n/a')} (same line length).",
              k["resample"]["d_newline"], None, [], head=name, key_share=share)


def grok_findings(g: dict, figs: dict) -> list[Finding]:
    s = "Mod-P Fourier reference"
    cfg = g["config"]
    keys = g["key_frequencies"]
    return [
        _f("grok_step", s, f"At P = {cfg['p']} ({100 * cfg['frac_train']:.0f} % train, lr {cfg['lr']}), train "
           f"accuracy reaches 100 % at step {g['memorisation_step']} and test accuracy passes 95 % at step "
           f"{g['grok_step']} (final test accuracy {100 * g['final_test_acc']:.1f} %). Nanda et al.'s step is "
           "for P = 113 at lr 1e-3, so only the order (memorise first, generalise late) is comparable.",
           g["grok_step"], "grok_step",
           [["memorised", g["memorisation_step"], ">=", 0], ["grokked later", (g["grok_step"] or -1)
                                                              - (g["memorisation_step"] or 0), ">", 0]],
           figs.get("grok")),
        _f("n_key_freqs", s, f"The embedding concentrates on {len(keys)} key frequencies {keys}, found from the "
           "data.", len(keys), "n_key_freqs", [["n", len(keys), ">=", 3], ["n", len(keys), "<=", 6]]),
    ]


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
        from linebreak.analysis import table

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
