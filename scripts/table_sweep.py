"""Issue 19's measures on table models over settings and seeds, from a sweep config: one JSON, one table, a figure.

    python scripts/table_sweep.py sweeps/tables.json --work runs/tables --out figures/tables [--only NAME,...]

The config (``sweeps/tables.json``) names a training preset as the ``base`` (``table``), the overrides of each run
(``data``: :class:`linebreak.corpus.store.CorpusConfig`; ``model``, ``optim``: the training configs), its
``seeds`` (each sets ``init_seed`` and the batch-order ``seed``), ``val``, the overrides that make a corpus of
fresh documents of the same settings for capture, and optionally ``qk`` and ``causal``, settings of those two
stages (default: theirs). Every corpus and model is made once under ``--work`` and reused
while it is there, so an interrupted sweep resumes. Per model it runs the stages as a user would, each with its
command, into ``<work>/measure/<run>-seed<S>/``:

- the pad accuracy and CE on rows >= 1 against the Bayes reference, from the run's last evaluation;
- ``linebreak capture`` (``resid_post`` of every layer, ``--control``) on the fresh documents and
  ``linebreak probe``: per layer the count R^2, the centroids' PC1 and top 6, and their sign changes behind the
  ringing gate (:func:`linebreak.probe.ringing.gated_ringing`, the count probe's R^2 as its second condition),
  beside the random-init control's in the same count window;
- ``linebreak qk --keys pad`` and ``linebreak causal --keys pad`` on the training corpus's validation split: the
  verdict head's twist numbers on all documents and on each half, its key-side tests (the observational one
  and the key shift, :mod:`linebreak.qk.key_shift`, which the target reads), the key track
  (:mod:`linebreak.qk.key_track`: ringing read on one document's key as its column moves, a second reading of
  the ringing target beside the residual centroids'), the score split, and the key ablations of the verdict
  head and of the column head;
- the same verdict on the model's random-init control (same architecture and init seed, untrained).

It writes ``<out>/tables.json`` (every number and each run's settings), ``<out>/tables.md`` (one row per model,
and how many seeds of each run meet each target) and ``<out>/tables.png``. The targets are issue 19's, judged
with the stages' own verdicts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from linebreak.io import save_json, write_text
from linebreak.qk import key_track
from linebreak.rules.qk import KEY_SHIFT_MIN_PEAK, KEY_TRACK_BAND_NATS, KEY_TRACK_MIN_SHARE

TARGET_PAD_ACC = 0.95  # issue 19: pad accuracy from the second row on
TARGET_TOP6, TARGET_PC1 = 0.9, 0.7  # the centroids' top 6 PCs hold >= 90 %, PC1 < 0.7


def sh(*argv: str, log: Path) -> None:
    """Run one linebreak command, its output to ``log``; stop with its error line if it fails."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    with open(log, "a") as f:
        r = subprocess.run([sys.executable, "-m", "linebreak", *argv], stdout=f, stderr=subprocess.STDOUT, env=env)
    if r.returncode:
        raise SystemExit(f"{' '.join(argv[:1])} failed (exit {r.returncode}); see {log}")


def geometry(probe_dir: Path) -> tuple[dict, dict]:
    """Per layer of a probe folder and of its ``control/``: count R^2, PC1, top 6 and the gated sign changes,
    ripples and turns (an arc of more than three quarters of a turn changes sign twice without rippling),
    the model and its control read by one gate in the count window both cover
    (:func:`linebreak.probe.ringing.compare`, as the study's ringing finding reads them, with the model's
    count probe R^2 as the gate's second condition). ``rings_control_not``: the claim the target asks for."""
    from linebreak.probe.result import load_probe
    from linebreak.probe.ringing import compare

    model, control = load_probe(probe_dir), load_probe(probe_dir / "control")
    out, ctl = {}, {}
    for key, layer in model.layers.items():
        m, c = model.tensors, control.tensors
        gate = compare(m[f"{key}.centroids"], m[f"{key}.centroids.values"], c[f"{key}.centroids"],
                       c[f"{key}.centroids.values"], probe_r2=layer.probes["count"].r2_test)
        for side, res, into in (("model", model, out), ("control", control, ctl)):
            g, p = gate[side], res.layers[key].centroids.pca
            into[key] = {"count_r2": res.layers[key].probes["count"].r2_test, "pc1": float(p.ratio[0]),
                         "top6": p.top6, "gate_open": g["gate_open"], "gate_reason": g["reason"],
                         "sign_changes": g["sign_changes"], "ungated_sign_changes": g["ungated_sign_changes"],
                         "ripples": g["ripples"], "turns": g["turns"],
                         "window": list(gate["window"])}
        out[key]["rings_control_not"] = gate["model_rings_control_not"]
    return out, ctl


def seq_len(corpus: str) -> int:
    """Tokens per document of a corpus folder (its ``metadata.json``)."""
    return int(json.loads(Path(corpus, "metadata.json").read_text())["seq_len"])


def flags(settings: dict) -> list[str]:
    """``{"n_docs": 32}`` as command-line overrides: ``["--n-docs", "32"]``."""
    return [a for k, v in settings.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def measure(model: Path, corpus: str, val: str, work: Path, max_docs: int, qk_settings: dict | None = None,
            causal_settings: dict | None = None, mixture: bool = False) -> dict:
    """Every number of one model (module doc), its stages run into ``work``; ``qk_settings`` and
    ``causal_settings`` override the two stages' defaults (the config's ``qk`` and ``causal``). A ``mixture``
    (tables and wrapped prose in one corpus) also gets the newline test on its prose (:func:`prose_heads`)."""
    qk_settings, causal_settings = qk_settings or {}, causal_settings or {}
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    last = json.loads(Path(model, "eval.jsonl").read_text().splitlines()[-1])
    pads = {k: last[k] for k in ("step", "pad_acc_rows1", "pad_acc_bayes_rows1", "pad_ce_rows1", "pad_ce_bayes_rows1",
                                 "pad_acc_row0", "pad_acc_bayes_row0", "pad_positions_rows1")}
    if not (work / "probe" / "probe.json").exists():
        sh("capture", "--model", str(model), "--corpus", val, "--out", str(work / "capture"), "--sites", "resid_post",
           "--max-docs", str(max_docs), "--max-tokens", str(max_docs * seq_len(val)), "--control", "--force", log=log)
        sh("probe", "--acts", str(work / "capture"), "--out", str(work / "probe"), "--sites", "resid_post",
           "--force", log=log)
    geo, control = geometry(work / "probe")
    if not (work / "qk" / "qk.json").exists():
        sh("qk", "--model", str(model), "--corpus", corpus, "--keys", "pad", "--out", str(work / "qk"),
           "--figures", str(work / "qk_figures"), "--force", *flags(qk_settings), log=log)
    if not (work / "causal" / "causal.json").exists():
        sh("causal", "--model", str(model), "--corpus", corpus, "--keys", "pad", "--qk", str(work / "qk" / "qk.json"),
           "--out", str(work / "causal"), "--force", *flags(causal_settings), log=log)
    prose = prose_heads(model, corpus, work, log) if mixture else None
    from linebreak.causal.columns import ColumnCausalResult
    from linebreak.qk.columns import ColumnQKResult

    qk = ColumnQKResult.load(work / "qk" / "qk.json")
    causal = ColumnCausalResult.load(work / "causal" / "causal.json")
    v = qk.verdict
    heads = {}
    for name in dict.fromkeys([v.best_head, qk.column_head]):
        h = qk.head(name)
        ab = next(a for a in causal.heads if a.head == name)
        heads[name] = {"qk": vars(h.qk), "gain_over_identity": h.gain_over_identity,
                       "gain_over_control": h.gain_over_control, "passes": h.verdict.passes,
                       "fails": [k for k, ok in h.verdict.checks.items() if not ok],
                       "pc1_share": vars(h.pc1_share), "attention": vars(h.attention), "key_side": vars(h.key_side),
                       "key_shift": None if h.key_shift is None else vars(h.key_shift),
                       "key_track": None if h.key_track is None else dataclasses.asdict(h.key_track),
                       "comparison_interaction_share": h.comparison.interaction_share,
                       "comparison_logit_range": vars(h.comparison.range), "key_ablation": vars(ab)}
        hg = next(g for g in qk.geometry if g.name == name)
        heads[name]["head_space"] = {side: {k: getattr(getattr(hg, side), k) for k in
                                            ("pc1", "top6", "smoothness", "gate_open", "sign_changes",
                                             "ripples", "turns")}
                                     | {"span": float(getattr(hg, side).values[-1] - getattr(hg, side).values[0])}
                                     for side in ("query", "key")}
    # every head's key-shift peak at the largest shift (nats), to name the heads that read the key's column
    shift_peaks = {h.name: h.key_shift.peak[-1] for h in qk.heads if h.key_shift is not None}
    # every head's key-track ringing: the share of documents whose key track rings where the controls' do not
    track_rings = {h.name: max(t.rings_control_not for t in (h.key_track.near, h.key_track.far) if t is not None)
                   for h in qk.heads if h.key_track is not None}
    return {"model": str(model), "pads": pads, "score_bounds": score_bounds(model), "geometry": geo,
            "key_shift_peaks": shift_peaks, "key_track_rings": track_rings,
            # every head's key-shift reading split by edit order: near / far peak on the same keys (nats)
            "key_track_orders": {h.name: [h.key_track.peak_near_both, h.key_track.peak_far_both]
                                 for h in qk.heads if h.key_track is not None},
            "control_geometry": control,
            "control_qk": control_verdict(model, corpus, work, qk_settings), "prose_heads": prose,
            "verdict": {"passes": v.passes, "passing_heads": v.passing_heads, "best_head": v.best_head,
                        "halves": [vars(x) for x in v.split_half.halves], "statement": v.statement},
            "column_head": qk.column_head, "heads": heads}


def score_bounds(model: Path) -> list[float | None]:
    """Each layer's largest possible attention logit, read from the trained weights
    (:func:`linebreak.hooks.arch.score_bound`): a soft cap, a fixed q/k norm bound, or what training made of
    Qwen3's learned q/k norm gains; None where nothing bounds it."""
    from linebreak.hooks import arch
    from linebreak.hooks.load import load_model

    m, _ = load_model(model)
    return [arch.score_bound(m, L) for L in range(m.config.num_hidden_layers)]


def prose_heads(model: Path, corpus: str, work: Path, log: Path) -> dict:
    """The newline test (``linebreak qk``, newline keys) on a mixture's wrapped-prose documents: the verdict's
    head and the measured boundary head (largest attention range to the previous newline), each with its twist
    numbers and the interaction share of its logit."""
    from linebreak.qk.attention import response_range
    from linebreak.qk.result import QKResult

    if not (work / "qk_prose" / "qk.json").exists():
        sh("qk", "--model", str(model), "--corpus", corpus, "--out", str(work / "qk_prose"),
           "--figures", str(work / "qk_prose_figures"), "--probes", "false", "--force", log=log)
    q = QKResult.load(work / "qk_prose" / "qk.json")

    def numbers(h):
        return {"head": h.name, "max_cos": h.qk.max_cos, "slope": h.qk.slope, "r2": h.qk.r2, "passes": h.verdict.passes,
                "interaction_share": h.comparison.interaction_share, "response_range": h.response.range}
    return {"n_docs": q.n_docs, "passes": q.verdict.passes, "best": numbers(q.head(q.verdict.best_head)),
            "boundary": numbers(max(q.heads, key=response_range))}


def control_verdict(model: Path, corpus: str, work: Path, qk_settings: dict) -> dict:
    """The twist verdict (pad keys) of the model's random-init control (the same architecture and init seed,
    untrained: :func:`linebreak.capture.control.control_model`): what the test reads on a model that learned
    nothing. Cached in ``<work>/control_qk.json``."""
    from linebreak.io import load_json

    path = work / "control_qk.json"
    if path.exists():
        return load_json(path, "control verdict")
    from linebreak.capture.control import control_model
    from linebreak.corpus.store import load_corpus
    from linebreak.hooks.load import ensure_eager, load_model
    from linebreak.qk.columns import column_analysis
    from linebreak.qk.config import QKConfig
    from linebreak.results import from_dict
    from linebreak.train.model import ModelConfig

    data = load_corpus(corpus)
    trained, tok = load_model(model)
    config = from_dict(ModelConfig, json.loads(Path(model, "train_config.json").read_text())["model"])
    ctl = control_model(trained, data, config)
    ensure_eager(ctl)
    r = column_analysis(ctl, data, QKConfig(**{**qk_settings, "keys": "pad"}), tok)
    best = r.head(r.verdict.best_head)
    out = {"passes": r.verdict.passes, "best_head": best.name, "max_cos": best.qk.max_cos, "slope": best.qk.slope,
           "r2": best.qk.r2, "match_share": max(h.attention.match_share for h in r.heads)}
    save_json(path, out)
    return out


def targets(r: dict) -> dict:
    """Issue 19's targets for one run, each True / False, judged on its best layer for the geometry."""
    geo = r["geometry"]
    spectrum = {k: g["top6"] >= TARGET_TOP6 and g["pc1"] < TARGET_PC1 for k, g in geo.items()}
    rings = {k: g["rings_control_not"] for k, g in geo.items()}  # >= 2 gated sign changes, the control's not
    lead = r["heads"][r["verdict"]["best_head"]]
    ab = lead["key_ablation"]
    return {"pad_acc": r["pads"]["pad_acc_rows1"] >= TARGET_PAD_ACC, "spectrum": any(spectrum.values()),
            "rings": any(rings.values()), "twist_all_and_halves": r["verdict"]["passes"]
            and all(h["passes"] for h in r["verdict"]["halves"]),
            "key_shift_peaks": bool(lead.get("key_shift") and lead["key_shift"]["peaks"]),
            "key_track_rings": bool(lead.get("key_track") and lead["key_track"]["rings"]),
            "same_column_keeps": ab["keeps_with_same_column"], "other_column_removes": ab["loses_with_other_column"]}


def space(head: dict) -> str:
    """A head's own query and key sides in a few numbers (PC1, top 6, gated sign changes and turns; the turns are
    n/a in a record written before they were measured)."""
    def one(g):
        if not g["gate_open"]:
            return f"{g['pc1']:.2f}, {g['top6']:.2f}, closed"
        turns = "n/a" if g.get("turns") is None else f"{g['turns']:.2f}"
        return f"{g['pc1']:.2f}, {g['top6']:.2f}, {g['sign_changes']} ({turns} turns)"
    return f"{one(head['head_space']['query'])} / {one(head['head_space']['key'])}"


def ring(g: dict) -> str:
    """A layer's gated sign changes and the turns of its top-2-PC angle, or why the gate is closed."""
    return f"{g['sign_changes']} ({g['turns']:.2f} turns)" if g["gate_open"] else "closed"


def table(runs: dict) -> str:
    lines = ["| model | pad acc rows>=1 (Bayes) | best layer: count R², PC1, top 6, gated sign changes (turns) "
             "(control's) | "
             "verdict head: max cos, slope, R², eps; halves; random-init model | key side η²+ (p) | "
             "key ablation: head, same, other (shares; same column from the key's own document) | "
             "column head: match share, η² chr / tok; key side; key ablation | "
             "verdict head's own query / key side: PC1, top 6, gated sign changes (turns) | targets met |",
             "|" + "---|" * 9]
    for name, r in runs.items():
        geo = r["geometry"]
        best = min(geo, key=lambda k: geo[k]["pc1"])
        g, c = geo[best], r["control_geometry"].get(best, {})
        lead, col = r["heads"][r["verdict"]["best_head"]], r["heads"][r["column_head"]]
        q, ks, ab, cab = lead["qk"], lead["key_side"], lead["key_ablation"], col["key_ablation"]
        halves = "/".join("pass" if h["passes"] else "fail" for h in r["verdict"]["halves"])
        met = [k for k, ok in r["targets"].items() if ok]
        lines.append(
            f"| {name} | {r['pads']['pad_acc_rows1']:.3f} ({r['pads']['pad_acc_bayes_rows1']:.3f}) | {best}: "
            f"{g['count_r2']:.2f}, {g['pc1']:.2f}, {g['top6']:.2f}, "
            f"{ring(g)} ({c.get('sign_changes') if c.get('gate_open') else 'closed'}) | {r['verdict']['best_head']}: "
            f"{q['max_cos']:.2f}, {q['slope']:.2f}, {q['r2']:.2f}, {q['median']:+.1f}; {halves}; random init "
            f"{'passes' if r['control_qk']['passes'] else 'fails'} ({r['control_qk']['max_cos']:.2f}, "
            f"{r['control_qk']['slope']:.2f}, {r['control_qk']['r2']:.2f}) | "
            f"{ks['excess']:+.3f} ({ks['p_value']:.3f}) | {ab['head_removed']:+.3f}, "
            f"{ab['resample_same_column']:+.3f}, "
            f"{ab['resample_other_column']:+.3f} ({ab['same_column_share']:.2f}, {ab['other_column_share']:.2f})"
            f"{own(ab)} | "
            f"{r['column_head']}: {col['attention']['match_share']:.2f}, {col['attention']['count_offset_eta2']:.2f} / "
            f"{col['attention']['token_offset_eta2']:.2f}; key side {col['key_side']['excess']:+.3f}; "
            f"{cab['head_removed']:+.3f}, {cab['resample_same_column']:+.3f}, {cab['resample_other_column']:+.3f} "
            f"({cab['same_column_share']:.2f}, {cab['other_column_share']:.2f}){own(cab)} | {space(lead)} | "
            f"{len(met)}/{len(r['targets'])}: {', '.join(met)} |")
    return "\n".join(lines) + "\n"


def own(ab: dict) -> str:
    """The same-column resample drawn from the key's own document, where the record has it: its share of the
    head's effect and the share of keys that had such a partner."""
    if ab.get("same_document_share") is None:
        return ""
    return f"; own document {ab['same_document_share']:.2f} ({ab['same_document_keys']:.2f} of keys)"


def figure(runs: dict, path: Path) -> None:
    """Pad accuracy; the count centroids' spectra against the random-init control's; the verdict heads' twist
    numbers; and, where the records have key tracks, every head's key-shift peak split by edit order (near: the
    key moved against its cell; far: its count alone, with its cell), on log axes."""
    from linebreak.plots.common import new_figure, save_png

    tracked = any(r.get("key_track_orders") for r in runs.values())
    fig, axes = new_figure(1, 4 if tracked else 3, figsize=(20 if tracked else 15, 4.4))
    names = list(runs)
    x = range(len(names))
    axes[0].bar(x, [runs[n]["pads"]["pad_acc_rows1"] for n in names], color="C0")
    axes[0].axhline(TARGET_PAD_ACC, color="k", ls="--", lw=0.8)
    axes[0].set_title("pad accuracy, rows >= 1")
    for n_i, n in enumerate(names):
        geo = runs[n]["geometry"]
        axes[1].scatter([geo[k]["pc1"] for k in geo], [geo[k]["top6"] for k in geo], label=n, color=f"C{n_i}")
        ctl = runs[n]["control_geometry"]
        axes[1].scatter([ctl[k]["pc1"] for k in ctl], [ctl[k]["top6"] for k in ctl], marker="x", color=f"C{n_i}")
        q = runs[n]["heads"][runs[n]["verdict"]["best_head"]]["qk"]
        axes[2].scatter([q["slope"]], [q["max_cos"]], color=f"C{n_i}", label=f"{n} {runs[n]['verdict']['best_head']}")
    axes[1].axvline(TARGET_PC1, color="k", ls="--", lw=0.8)
    axes[1].axhline(TARGET_TOP6, color="k", ls="--", lw=0.8)
    axes[1].set_xlabel("PC1 share")
    axes[1].set_ylabel("top 6 share")
    axes[1].set_title("count centroids per layer (x: random init)")
    axes[1].legend(fontsize=7)
    from linebreak.rules.qk import MIN_MAX_COS, SLOPE_RANGE

    axes[2].axhline(MIN_MAX_COS, color="k", ls="--", lw=0.8)
    for s in SLOPE_RANGE:
        axes[2].axvline(s, color="k", ls=":", lw=0.8)
    axes[2].set_xlabel("offset-line slope")
    axes[2].set_ylabel("max cos")
    axes[2].set_title("verdict head (pad keys); pass: inside the lines")
    axes[2].legend(fontsize=7)
    if tracked:
        for n_i, n in enumerate(names):
            pk = [v for v in runs[n].get("key_track_orders", {}).values() if v[0] >= KEY_SHIFT_MIN_PEAK / 5]
            axes[3].scatter([v[0] for v in pk], [max(v[1], 1e-3) for v in pk], color=f"C{n_i}", s=14, label=n)
        axes[3].plot([0.1, 10], [0.1, 10], "k--", lw=0.8, label="all of it read from the count")
        axes[3].set(xscale="log", yscale="log", xlabel="peak at D, key moved against its cell (near; nats)",
                    ylabel="peak at D, count alone (far; nats)",
                    title=f"every head with a near peak >= {KEY_SHIFT_MIN_PEAK / 5:.1f}: what its count carries")
        axes[3].legend(fontsize=7)
    axes[0].set_xticks(list(x), names, rotation=30, ha="right", fontsize=7)
    for ax in axes:
        ax.title.set_fontsize(9)
    save_png(fig, path)


def settings(spec: dict, run: dict):
    """(corpus config, fresh-documents corpus config, training config) of one run: the base preset with the run's
    overrides (a one-line error for an unknown setting)."""

    from linebreak.io import UserError
    from linebreak.presets import TRAIN
    from linebreak.train.config import TrainConfig

    base = TRAIN.get(spec.get("base", "table"))
    if base is None:
        raise UserError(f"unknown base preset {spec.get('base')!r}; choose from: {', '.join(TRAIN)}")

    def over(obj, key: str, extra: dict | None = None):
        fields = {f.name for f in dataclasses.fields(obj)}
        values = {**run.get(key, {}), **(extra or {})}
        bad = sorted(set(values) - fields)
        if bad:
            raise UserError(f"run {run['name']!r}: unknown {key} setting(s) {', '.join(bad)}")
        return dataclasses.replace(obj, **values)

    data = over(base.data, "data")
    val = dataclasses.replace(data, **spec.get("val", {}))
    return data, val, TrainConfig(over(base.train.model, "model"), over(base.train.optim, "optim"))


def ensure(spec: dict, run: dict, seed: int, work: Path, threads: int | None = None) -> tuple[Path, Path, Path]:
    """The run's corpus, fresh documents and model for ``seed`` under ``work``, made if absent (trained on
    ``threads`` CPU threads; default: the run's own setting)."""

    from linebreak.corpus.store import generate_corpus, load_corpus
    from linebreak.train.loop import train

    data, val, cfg = settings(spec, run)
    corpus, fresh = work / "corpora" / run["name"], work / "corpora" / f"{run['name']}-fresh"
    for cfg_, path in ((data, corpus), (val, fresh)):
        if not (path / "metadata.json").exists():
            generate_corpus(cfg_, path, force=True)
    model = work / "models" / f"{run['name']}-seed{seed}"
    if not (model / "metrics.json").exists():
        optim = dataclasses.replace(cfg.optim, seed=seed, **({"threads": threads} if threads else {}))
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init_seed=seed), optim=optim)
        print(f"{model.name}: training", flush=True)
        train(cfg, load_corpus(corpus), model, force=True)
    return corpus, fresh, model


def seed_counts(runs: dict, spec: dict) -> str:
    """How many seeds of each run meet each target (issue 19 asks for 2 of 3)."""
    names = list(next(iter(runs.values()))["targets"])
    lines = ["| run | seeds | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 2)]
    for run in spec["runs"]:
        rs = [r for r in runs.values() if r["run"] == run["name"]]
        if rs:
            lines.append(f"| {run['name']} | {len(rs)} | "
                         + " | ".join(str(sum(r["targets"][k] for r in rs)) for k in names) + " |")
    return "\n".join(lines) + "\n"


def section(header: str, lines: list[str]) -> str:
    """A markdown table under a blank line: ``header`` (its columns), the rule and ``lines``; empty without lines."""
    rule = "|" + "---|" * (header.count("|") - 1)
    return "\n" + "\n".join([header, rule, *lines]) + "\n" if lines else ""


def prose_table(runs: dict) -> str:
    """The newline test on the prose of each mixture model (empty when there is none)."""
    rows = [(n, r["prose_heads"]) for n, r in runs.items() if r.get("prose_heads")]
    lines = []
    for n, p in rows:
        b, m = p["best"], p["boundary"]
        lines.append(f"| {n} | {p['n_docs']} | {'passes' if p['passes'] else 'fails'} | {b['head']}: "
                     f"{b['max_cos']:.2f}, {b['slope']:.2f}, {b['r2']:.2f}, {b['interaction_share']:.3f} | "
                     f"{m['head']}: "
                     f"{m['response_range']:.2f}, {m['interaction_share']:.3f} |")
    return section("| mixture model | prose documents | newline verdict | best twist head: max cos, slope, R², "
                   "interaction | boundary head: attention range, interaction |", lines)


def bound_table(runs: dict) -> str:
    """The runs whose attention logits are bounded (a cap, or q/k norms): the bound each layer's weights allow
    beside what the verdict head makes of it (empty when no run is bounded)."""
    rows = [(n, r) for n, r in runs.items() if any(b is not None for b in r.get("score_bounds") or [])]
    lines = []
    for n, r in rows:
        lead = r["heads"][r["verdict"]["best_head"]]
        q, rng = lead["qk"], lead["comparison_logit_range"]
        opened = [ring(g) for g in r["geometry"].values() if g["gate_open"]]
        lines.append(f"| {n} | {', '.join(f'{b:.1f}' for b in r['score_bounds'])} | {r['pads']['pad_acc_rows1']:.3f} | "
                     f"{r['verdict']['best_head']} {'passes' if r['verdict']['passes'] else 'fails'}: "
                     f"{q['max_cos']:.2f}, {q['slope']:.2f}, {q['r2']:.2f}; {rng['interaction']:.1f} / "
                     f"{rng['total']:.1f} | {'; '.join(opened) or 'all closed'} | {space(lead)} |")
    return section("| model | largest logit the weights allow, by layer | pad acc | verdict head: max cos, slope, R²; "
                   "predicted logit range: interaction / total | open layers' gated sign changes (turns) | verdict "
                   "head's own query / key side: PC1, top 6, gated sign changes (turns) |", lines)


def detailed(runs: dict, field: str):
    """``(run name, record, head name, head record, its field)`` for every detailed head whose record has ``field``
    (a record written before that test existed has none)."""
    for n, r in runs.items():
        for name, h in r["heads"].items():
            if h.get(field) is not None:
                yield n, r, name, h, h[field]


def shift_table(runs: dict) -> str:
    """The key-shift test (the document edited so that only the previous row's matching column moves): the
    verdict and column heads' peak per shift, their slope and pad correlation at the largest, and every head of
    the model that peaks (empty when no record has it)."""
    lines = []
    for n, r, name, h, ks in detailed(runs, "key_shift"):
        peaking = [f"{k} {v:.2f}" for k, v in r["key_shift_peaks"].items() if v >= KEY_SHIFT_MIN_PEAK]
        lines.append(f"| {n} | {name} | {', '.join(f'{p:+.2f}' for p in ks['peak'])} "
                     f"[{ks['peak_ci'][0]:+.2f}, {ks['peak_ci'][1]:+.2f}] | {ks['peak_first_row']:+.2f} "
                     f"({ks['n_first_row']}) | {ks['slope'][-1]:+.3f} | {ks['pad_corr']:+.2f} | "
                     f"{turn_rates(h, ks)} | {'yes' if ks['peaks'] else 'no'} | {', '.join(peaking) or 'none'} |")
    return section("| model | head | logit peak at the key's column, shifts 1..D (nats) [95 % CI at D] | first-row "
                   "keys' peak at D (pairs) | slope at D (nats/char) | pad corr | key turn per char: one document's "
                   "key moved D / the key side's centroids (rad) | peaks | heads whose peak at D is >= 0.5 |", lines)


def track_table(runs: dict) -> str:
    """The key tracks (one document's matching key moved over its row's pads: ``near`` order, the pad just before
    it first; ``far``, every pad but that one, so only the key's count moves): the verdict and column heads'
    ranges, logit changes, peaks on the same keys, turn rates against the control's, and the gated ringing of the
    tracks; every head of the model whose tracks ring, and every head whose key-shift peak passes the rule with
    its near and far peaks on the same keys (empty when no record has the tracks)."""
    def dips(t, D):
        logit = dict(zip(t["shifts"], t["logit"]))
        return ", ".join(f"{logit[d]:+.2f}" if d in logit else "n/a" for d in (-2 * D, -D, D, 2 * D))

    def span(t):
        return f"{t['shifts'][0]}..{t['shifts'][-1]}"

    def window(t):  # the shifts within KEY_TRACK_BAND_NATS of the top ("<" / ">": open to the track's end)
        lo, hi = key_track.band(key_track.Track(**t))
        return f"{lo if lo is not None else '<'}..{hi if hi is not None else '>'}"

    def ring(t):
        return (f"{t['sign_changes']:.1f} ({t['turns']:.2f} turns), {t['rings_control_not']:.2f} "
                f"({t['walk_rings']:.2f})")

    lines = []
    for n, r, name, _, kt in detailed(runs, "key_track"):
        ringing = [f"{k} {v:.2f}" for k, v in r.get("key_track_rings", {}).items() if v >= KEY_TRACK_MIN_SHARE]
        orders = r.get("key_track_orders", {})
        peaking = [f"{k} {orders[k][0]:+.2f} / {orders[k][1]:+.2f}" for k, v in r["key_shift_peaks"].items()
                   if v >= KEY_SHIFT_MIN_PEAK and k in orders]
        near, far, D, nan = kt["near"], kt["far"], kt["D"], float("nan")
        lines.append(
            f"| {n} | {name} | {near['n_sites']} / {far['n_sites'] if far else 0} | "
            f"{span(near)} / {span(far) if far else 'n/a'} | "
            f"{dips(near, D)} / {dips(far, D) if far else 'n/a'} | {window(near)} / {window(far) if far else 'n/a'} | "
            f"{kt['peak_near_both']:+.2f} / "
            f"{kt['peak_far_both']:+.2f} ({kt['n_both']}) | {near['turn_rate']:.3f} / "
            f"{far['turn_rate'] if far else nan:.3f} / {near['turn_rate_control']:.3f} | "
            f"{ring(near)} / {ring(far) if far else 'n/a'} | {'yes' if kt['rings'] else 'no'} | "
            f"{', '.join(ringing) or 'none'} | {', '.join(peaking) or 'none'} |")
    return section("| model | head | sites: near / far | shifts: near / far | logit change at -2D, -D, +D, +2D: near / "
                   f"far (nats) | shifts within {KEY_TRACK_BAND_NATS:g} nat of the top: near / far | peak at D on "
                   "the same keys: near / far (keys) | key turn per char: near / far / random-init near (rad) | "
                   "median gated sign changes (turns), share ringing where the controls do not (walks that ring): "
                   "near / far | rings | heads whose tracks ring | heads whose key-shift "
                   "peak is >= 0.5: near / far on the same keys |", lines)


def turn_rates(head: dict, ks: dict) -> str:
    """How fast a head's key turns per character of its column: one document's key moved by the largest shift,
    against the key side's centroids (their turns over the column starts they span; n/a where its gate is
    closed)."""
    g = head["head_space"]["key"]
    moved = f"{ks['key_angle'][-1] / ks['shifts'][-1]:.3f}"
    centroids = (f"{2 * math.pi * g['turns'] / g['span']:.3f}" if g.get("turns") is not None and g.get("span")
                 else "n/a")
    return f"{moved} / {centroids}"


def reading_table(runs: dict) -> str:
    """Count against ordinal reading, for the runs whose documents have empty cells (where "the same cell of the
    row above" and "the same column" name different keys): the verdict and column heads' attention on each."""
    rows = [(n, r) for n, r in runs.items()
            if any(h["attention"]["n_disagree"] for h in r["heads"].values())]
    lines = []
    for n, r in rows:
        for name, h in r["heads"].items():
            a = h["attention"]
            lines.append(f"| {n} | {name} | {a['n_disagree']} | {a['count_only_share']:.3f} | "
                         f"{a['ordinal_only_share']:.3f} |")
    return section("| model | head | pad decisions where the readings disagree | attention on: same column, other "
                   "cell (count) | same cell, other column (ordinal) |", lines)


def main(argv: list[str] | None = None) -> int:

    from linebreak.io import UserError, load_json, to_jsonable

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="a table sweep config (sweeps/tables.json)")
    p.add_argument("--work", default="runs/tables", help="folder for corpora, models and stage outputs")
    p.add_argument("--out", default="figures/tables", help="folder for tables.json, tables.md and tables.png")
    p.add_argument("--only", default="", help="comma list of run names (default: every run)")
    p.add_argument("--max-docs", type=int, default=1024, help="fresh documents captured per model")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the models this run trains (default: the preset's); one per job when "
                        "several sweeps share the cores, since oversubscribed threads spin. Each model's record "
                        "keeps the settings it was trained with")
    args = p.parse_args(argv)
    try:
        spec = load_json(args.config, "table sweep config")
        only = [n for n in args.only.split(",") if n]
        work, out = Path(args.work), Path(args.out)
        runs = {}
        for run in spec["runs"]:
            if only and run["name"] not in only:
                continue
            for seed in run.get("seeds", [0]):
                corpus, fresh, model = ensure(spec, run, seed, work, args.threads)
                name = model.name
                print(f"{name}: measuring", flush=True)
                data, _, _ = settings(spec, run)
                r = measure(model, str(corpus), str(fresh), work / "measure" / name, args.max_docs,
                            spec.get("qk"), spec.get("causal"), mixture=data.table_fraction < 1)
                trained = load_json(model / "train_config.json", "training config")  # as trained (threads, seeds)
                r |= {"run": run["name"], "seed": seed, "why": run.get("why", ""),
                      "settings": to_jsonable({"data": dataclasses.asdict(data), "train": trained})}
                r["targets"] = targets(r)
                runs[name] = r
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_json(out / "tables.json", {"format": "linebreak-table-sweep/1", "config": str(args.config), "runs": runs})
    text = (table(runs) + "\n" + seed_counts(runs, spec) + prose_table(runs) + reading_table(runs)
            + bound_table(runs) + shift_table(runs) + track_table(runs))
    write_text(out / "tables.md", text)
    figure(runs, out / "tables.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
