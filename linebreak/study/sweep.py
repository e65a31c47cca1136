"""``linebreak sweep``: search for the regime in which the count helix and the QK twist appear.

A sweep config (JSON, see ``sweeps/helix.json``) names a study preset as the base and a list of runs, each a
set of overrides of the data, model and optimiser configs. Every run goes through the study's line-width
stages (corpus -> model -> probe with its random-init control -> qk;
:func:`linebreak.study.line_stages.run_line_stages`),
each reused while its inputs are unchanged, so an interrupted sweep resumes. Per run the sweep records the
newline information captured, the count probe R^2, the centroids' PC spectrum, the ringing numbers, the helix
fit and the QK twist verdict with its numbers, and checks them against the targets of issue #7
(:data:`linebreak.rules.sweep.TARGETS`). Results: ``sweep.json`` (every run), ``summary.md`` (one table) and
``summary.png``. Rows of an earlier ``sweep.json`` are plain dicts and are read as they are.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from linebreak.io import UserError, load_json, save_json, to_jsonable, write_text
from linebreak.rules.sweep import MIN_INFO_FOR_DEFAULT, TARGETS


def load_sweep(path: str | Path) -> dict:
    spec = load_json(path, "sweep config")
    if not isinstance(spec, dict) or not isinstance(spec.get("runs"), list) or not spec["runs"]:
        raise UserError(f"sweep config {path} needs a non-empty list 'runs'")
    names = [r.get("name") for r in spec["runs"]]
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise UserError("every sweep run needs a unique, non-empty 'name'")
    return spec


def _replace(obj, overrides: dict, what: str, run: str):
    fields = {f.name for f in dataclasses.fields(obj)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise UserError(f"run {run!r}: unknown {what} setting(s) {', '.join(bad)}")
    return dataclasses.replace(obj, **overrides)


def run_preset(spec: dict, run: dict):
    """The study preset of one sweep run: the base preset with the run's (and the sweep's common) overrides."""
    from linebreak.presets import STUDY as STUDY_PRESETS
    from linebreak.presets import TrainPreset as Preset

    base = spec.get("base", "default")
    if base not in STUDY_PRESETS:
        raise UserError(f"unknown base preset {base!r}; choose from: {', '.join(STUDY_PRESETS)}")
    sp = STUDY_PRESETS[base]
    common = spec.get("common", {})
    over = {k: {**common.get(k, {}), **run.get(k, {})} for k in ("data", "model", "optim", "qk")}
    tr = sp.train
    data = _replace(tr.data, over["data"], "data", run["name"])
    model = _replace(tr.train.model, over["model"], "model", run["name"])
    optim = _replace(tr.train.optim, over["optim"], "optim", run["name"])
    if data.seq_len > model.n_ctx:
        model = dataclasses.replace(model, n_ctx=data.seq_len)
    train = Preset(data, dataclasses.replace(tr.train, model=model, optim=optim))
    return dataclasses.replace(sp, train=train, qk=_replace(sp.qk, over["qk"], "qk", run["name"]))


def row(name: str, res: dict) -> dict:
    """The numbers of one finished run that the sweep compares, from its stages' typed results (a plain dict:
    the rows of ``sweep.json``, NaN written as None)."""
    from linebreak.study.findings.probe import best_layer, geometry

    m = res["model"].result if "model" in res else None
    runs = res["probe"].result
    key = best_layer(runs.model)
    g, c = geometry(runs.model.layers[key]), geometry(runs.control.layers[key])
    q = res["qk"].result
    v = q.verdict
    best = q.head(v.best_head)
    return to_jsonable({
        "name": name, "info_captured": m.info_captured if m else None,
        "forced_break_acc": m.forced_break_acc if m else None, "train_seconds": m.train_seconds if m else None,
        "layer": key, "count_r2": g.r2, "pc1": g.pc1, "top6": g.top6, "sign_changes": g.sign_changes,
        "first_negative": g.first_negative, "second_positive": g.second_positive,
        "helix_periods": g.helix_periods, "helix_gain": g.helix_gain, "control_pc1": c.pc1,
        "control_sign_changes": c.sign_changes, "qk_passes": v.passes,
        "qk_holds_on_halves": v.split_half.holds_on_both_halves,
        "qk_best_head": best.name, "qk_slope": best.qk.slope, "qk_offset": best.qk.median,
        "qk_max_cos": best.qk.max_cos, "identity_max_cos": best.identity.max_cos,
        "qk_gain_over_identity": best.gain_over_identity,
        "key_side_moves": bool(best.key_side.moves), "key_side": best.key_side,
        "qk_probe_passes": v.probes.passes if v.probes is not None else None,  # None: run without the route
        # the share of the best head's count x width logit that is interaction
        "qk_interaction_share": best.comparison.interaction_share,
    })


def score(r: dict) -> tuple:
    """How close a run comes to the targets: a working model first, then targets met, then the least dominant
    PC1, then ringing, then newline information."""
    met = sum(bool(f(r)) for f in TARGETS.values())
    works = (r["info_captured"] or 0.0) >= MIN_INFO_FOR_DEFAULT
    return (works, met, -(r["pc1"] if r["pc1"] is not None else 1.0), r["sign_changes"] or 0,
            r["info_captured"] or 0.0)


def _earlier_rows(out: Path, presets: dict, now: set[str]) -> dict:
    """Rows of an earlier ``sweep.json`` in ``out`` for the spec's runs not run now (so that ``--only`` adds to
    the record instead of replacing it); a row is kept only while its run's settings are unchanged."""
    path = out / "sweep.json"
    if not path.is_file():
        return {}
    old = load_json(path, "earlier sweep record")
    keep, defaults = {}, _default_settings()
    for r in old.get("runs", []) if isinstance(old, dict) else []:
        name = r.get("name") if isinstance(r, dict) else None
        if name in now or name not in presets:
            continue
        if same_settings(r.get("settings"), to_jsonable(dataclasses.asdict(presets[name].train)), defaults):
            keep[name] = r
    return keep


def same_settings(old, new, defaults) -> bool:
    """Whether a recorded run's settings ``old`` are ``new``, counting a setting that ``old`` lacks as the same
    when ``new`` has its default there (a field that linebreak gained after the record was written, such as
    ``optim.device``), and a list setting recorded as text (``"20:80"``) as its list, so that rows of
    earlier runs survive an upgrade; any other difference is a change."""
    if isinstance(old, str) and isinstance(new, list):  # a list setting recorded as text ("20:80") before it
        return _as_list(old, new) == new                 # became a tuple
    if not (isinstance(new, dict) and isinstance(old, dict)):
        return old == new
    d = defaults if isinstance(defaults, dict) else {}
    return not set(old) - set(new) and all(same_settings(old[k], v, d.get(k)) if k in old else v == d.get(k)
                                           for k, v in new.items())


def _as_list(text: str, like: list) -> list | None:
    """``text`` parsed as the list setting ``like`` is (None if it does not parse)."""
    from linebreak.config import parse_tuple

    try:
        return list(parse_tuple(text, type(like[0]) if like else str))
    except UserError:
        return None


def _default_settings() -> dict:
    """The settings record of a run whose every setting is at its dataclass default (as ``row`` stores one)."""
    from linebreak.corpus import CorpusConfig
    from linebreak.presets import TrainPreset as Preset
    from linebreak.train.config import OptimConfig, TrainConfig
    from linebreak.train.model import ModelConfig

    return to_jsonable(dataclasses.asdict(Preset(CorpusConfig(), TrainConfig(ModelConfig(), OptimConfig()))))


def run_sweep(spec_path: str | Path, out: str | Path, only: list[str] | None = None, log=print) -> dict:
    from linebreak.study.line_stages import run_line_stages
    from linebreak.study.pipeline import StudyConfig

    spec = load_sweep(spec_path)
    out = Path(out)
    runs = [r for r in spec["runs"] if not only or r["name"] in only]
    if only and len(runs) != len(set(only)):
        raise UserError(f"unknown run name(s): {', '.join(sorted(set(only) - {r['name'] for r in runs}))}")
    presets = {r["name"]: run_preset(spec, r) for r in spec["runs"]}  # validate every run before any work
    rows = []

    def record_rows():
        """This invocation's rows and, with ``only``, the earlier record's other rows (read afresh each time,
        so that sweeps of other runs into the same folder meanwhile are kept), in the spec's order."""
        done = _earlier_rows(out, presets, {r["name"] for r in runs}) if only else {}
        done |= {r["name"]: r for r in rows}
        return [done[r["name"]] for r in spec["runs"] if r["name"] in done]

    for r in runs:
        t0 = time.perf_counter()
        log(f"== sweep run {r['name']}: {r.get('why', '')}")
        res = run_line_stages(out / r["name"], StudyConfig(seed=spec.get("seed", 0)), presets[r["name"]], log=log)
        rows.append(row(r["name"], res) | {"wall_s": time.perf_counter() - t0,
                                           # as JSON (tuples as lists), as a kept row reads back from sweep.json
                                           "settings": to_jsonable(dataclasses.asdict(presets[r["name"]].train))})
        rows[-1]["targets"] = {k: bool(f(rows[-1])) for k, f in TARGETS.items()}
        save_json(out / "sweep.json", {"spec": spec, "runs": record_rows()})  # after each run: partial results
    rows = record_rows()
    best = max(rows, key=score)
    record = {"spec": spec, "runs": rows, "best": best["name"],
              "any_meets_all_targets": any(all(r["targets"].values()) for r in rows)}
    save_json(out / "sweep.json", record)
    write_text(out / "summary.md", summary_table(rows, best["name"]))
    summary_figure(rows, out / "summary.png")
    return record


COLUMNS = [("info", "info_captured", "{:.3f}"), ("R2 c", "count_r2", "{:.3f}"), ("PC1", "pc1", "{:.3f}"),
           ("top6", "top6", "{:.3f}"), ("signs", "sign_changes", "{}"), ("helix dR2", "helix_gain", "{:.3f}"),
           ("ctrl PC1", "control_pc1", "{:.3f}"), ("QK slope", "qk_slope", "{:.2f}"),
           ("QK eps", "qk_offset", "{:+.1f}"), ("QK cos", "qk_max_cos", "{:.2f}"),
           ("id cos", "identity_max_cos", "{:.2f}"), ("twist", "qk_passes", "{}"),
           ("on halves", "qk_holds_on_halves", "{}"), ("probe twist", "qk_probe_passes", "{}"),
           ("QK inter", "qk_interaction_share", "{:.3f}"), ("key side", "key_side_moves", "{}"),
           ("train s", "train_seconds", "{:.0f}")]


def summary_table(rows: list[dict], best: str) -> str:
    def cell(r, k, fmt):
        return "-" if r.get(k) is None else fmt.format(r[k])
    lines = ["| run | " + " | ".join(c for c, _, _ in COLUMNS) + " | targets met |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for r in rows:
        met = sum(r["targets"].values())
        name = f"**{r['name']}**" if r["name"] == best else r["name"]
        lines.append(f"| {name} | " + " | ".join(cell(r, k, f) for _, k, f in COLUMNS) +
                     f" | {met}/{len(TARGETS)} |")
    lines += ["", f"Targets: {'; '.join(TARGETS)}. Best (bold): among runs capturing at least "
              f"{MIN_INFO_FOR_DEFAULT} of the newline information, most targets met, then lowest PC1, then most "
              "sign changes.", ""]
    return "\n".join(lines)


def summary_figure(rows: list[dict], path: Path) -> Path:
    from linebreak.plots.common import new_figure, save_png
    from linebreak.rules.probe import PC1_SHARE_MAX, SIGN_CHANGES_MIN

    fig, axes = new_figure(1, 3, figsize=(15, 4.5))
    names = [r["name"] for r in rows]
    x = range(len(rows))
    axes[0].bar(x, [r["pc1"] or 0 for r in rows], label="trained model")
    axes[0].plot(x, [r["control_pc1"] or 0 for r in rows], "kx", label="random-init control")
    axes[0].axhline(PC1_SHARE_MAX, color="r", ls="--", label=f"target PC1 < {PC1_SHARE_MAX:.2f}")
    axes[0].set_title("Share of centroid variance in PC1\n(a straight ramp is ~1)")
    axes[1].bar(x, [r["sign_changes"] or 0 for r in rows])
    axes[1].axhline(SIGN_CHANGES_MIN, color="r", ls="--", label=f"target >= {SIGN_CHANGES_MIN} (ringing)")
    axes[1].set_title("Sign changes of the count-similarity profile")
    axes[2].bar(x, [r["qk_slope"] if r["qk_slope"] is not None else 0 for r in rows])
    axes[2].axhspan(0.8, 1.2, color="g", alpha=0.15, label="slope within 0.2 of 1")
    axes[2].set_title("Best head: slope of argmax width k*(i) vs count i")
    for ax in axes:
        ax.set_xticks(list(x), names, rotation=35, ha="right", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle("Helix-and-twist sweep: each bar one training setting (data, positions, width, depth, decay)",
                 y=1.04)
    return save_png(fig, path)
