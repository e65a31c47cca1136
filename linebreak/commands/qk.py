"""``linebreak qk``: rank every attention head by how well its QK circuit twists count onto width, and say
whether any head's twist lines up with the line limit (JSON, terminal table, figures).

``--device cpu|cuda`` and ``--dtype float32|bfloat16|float16``: where the model runs and in what precision (the
statistics are float32/float64 on the CPU; qk.json's config records both). ``--layers 4:16`` (or ``4,8,12``)
judges the heads of those layers only (default: every layer), each with the numbers it gets in an all-layer run;
``--probe-rows`` caps the token rows the probe route keeps per layer (a seeded sample); a run whose sums,
attention and rows would exceed ``--max-gb`` (default 8) is refused before the model runs, saying what to cut.

``--keys pad`` (or ``cell_start``) on a table corpus (``linebreak generate --layout table``) runs the same verdict with
an earlier row's column starts as the keys in place of the previous newline (:mod:`linebreak.qk.columns`). There the
key tracks (``--key-track-sites``, :mod:`linebreak.qk.key_track`) are read beside the model's random-init control,
which the command builds (from the model's training config when it has one, as ``linebreak capture --control``).
"""

from __future__ import annotations

import argparse

from linebreak.config import add_config_args, resolve_config


def register(subparsers) -> None:
    from linebreak.qk.config import QKConfig

    p = subparsers.add_parser("qk", help="boundary heads and the QK twist test", description=__doc__)
    p.add_argument("--model", default="data/model", help="trained model folder (linebreak train; default: data/model)")
    p.add_argument("--corpus", default="data/corpus", help="corpus folder (linebreak generate; default: data/corpus)")
    p.add_argument("--out", default="runs/qk", help="folder for qk.json (default: runs/qk)")
    p.add_argument("--figures", default="figures/qk", help="folder for figures (default: figures/qk)")
    p.add_argument("--preset", default="default", help="analysis preset: default | tiny")
    p.add_argument("--force", action="store_true", help="overwrite an existing qk.json")
    add_config_args(p, QKConfig, "QK analysis settings (default: the preset's value)")
    p.set_defaults(func=run)


def load_inputs(args, cfg):
    """Model (on ``cfg.device`` in ``cfg.dtype``), tokenizer and corpus named on the command line (shared
    with ``linebreak causal``)."""
    from linebreak.corpus.store import load_corpus
    from linebreak.hooks.load import load_model

    corpus = load_corpus(args.corpus)
    model, tokenizer = load_model(args.model, cfg.device, cfg.dtype)
    return model, tokenizer, corpus


def print_table(result, n: int = 12) -> None:
    """The top ``n`` heads of a :class:`linebreak.qk.result.QKResult`, one line each, and the verdicts."""
    def f(x, spec=".2f"):
        return "   nan" if x is None or x != x else format(x, spec)

    print(f"{'rank':>4} {'head':<6} {'maxcos':>6} {'slope':>6} {'R2':>5} {'eps':>5} {'edge':>5} {'g_id':>6} "
          f"{'g_ctl':>6} {'qPC1':>5} {'kPC1':>5} {'resp':>5} {'keyρ':>6} {'keyη²+':>7} {'key p':>6} {'inter':>5}  pass")
    for h in result.heads[:n]:
        q, ks = h.qk, h.key_side
        print(f"{h.rank:>4} {h.name:<6} {f(q.max_cos):>6} {f(q.slope):>6} {f(q.r2):>5} "
              f"{f(q.median, '+.1f'):>5} {f(q.edge_fraction):>5} "
              f"{f(h.gain_over_identity, '+.2f'):>6} {f(h.gain_over_control, '+.2f'):>6} "
              f"{f(h.pc1_share.query):>5} {f(h.pc1_share.key):>5} "
              f"{f(h.response.range):>5} {f(ks.corr, '+.2f'):>6} "
              f"{f(ks.excess, '+.3f'):>7} {f(ks.p_value, '.3f'):>6} "
              f"{f(h.comparison.interaction_share):>5}  {'yes' if h.verdict.passes else 'no'}")
    print("inter: share of the head's mean count x width attention logit that is interaction (a twist); the "
          "rest is a count effect plus a width effect")
    print(("PASS: " if result.verdict.passes else "FAIL: ") + result.verdict.statement)
    probes = result.verdict.probes
    if probes:
        print(("PASS: " if probes.passes else "FAIL: ") + probes.statement)


def print_columns(result, n: int = 12) -> None:
    """The top ``n`` heads of a :class:`linebreak.qk.columns.ColumnQKResult`, one line each, and the verdict."""
    def f(x, spec=".2f"):
        return "   nan" if x is None or x != x else format(x, spec)

    print(f"keys: {result.config.keys} ({result.n_queries} pad decisions, {result.n_keys} keys, {result.n_pairs} "
          f"pairs); queries: {result.query_frame}")
    print(f"{'rank':>4} {'head':<6} {'maxcos':>6} {'slope':>6} {'R2':>5} {'eps':>5} {'edge':>5} {'g_id':>6} "
          f"{'match':>5} {'mass':>5} {'η²chr':>5} {'η²tok':>5} {'inter':>5} {'keyη²+':>7} {'key p':>6}  pass")
    for h in result.heads[:n]:
        q, a, ks = h.qk, h.attention, h.key_side
        print(f"{h.rank:>4} {h.name:<6} {f(q.max_cos):>6} {f(q.slope):>6} {f(q.r2):>5} {f(q.median, '+.1f'):>5} "
              f"{f(q.edge_fraction):>5} {f(h.gain_over_identity, '+.2f'):>6} {f(a.match_share):>5} "
              f"{f(a.key_mass):>5} {f(a.count_offset_eta2):>5} {f(a.token_offset_eta2):>5} "
              f"{f(a.measured_interaction_share):>5} {f(ks.excess, '+.3f'):>7} {f(ks.p_value, '.3f'):>6}  "
              f"{'yes' if h.verdict.passes else 'no'}")
    print("match: attention on the earlier rows' keys at the next column start (mass: on all their keys); η²chr / "
          "η²tok: share of a previous-row logit explained by the character / token offset; inter: interaction share "
          "of the measured mean logit")
    print(f"column head (most attention on the next column start): {result.column_head}")
    print(("PASS: " if result.verdict.passes else "FAIL: ") + result.verdict.statement)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from linebreak.io import prepare_out_dir
    from linebreak.plots.qk import plot_qk
    from linebreak.presets import QK as PRESETS
    from linebreak.qk.analysis import QKConfig, qk_analysis

    cfg = resolve_config(QKConfig, PRESETS, args.preset, args)
    model, tokenizer, corpus = load_inputs(args, cfg)  # a bad model folder or device: nothing created yet
    out = prepare_out_dir(args.out, args.force, "qk.json")
    if cfg.keys != "newline":
        from linebreak.plots.qk import plot_columns
        from linebreak.qk.columns import column_analysis

        control = None
        if cfg.key_track_sites and corpus.table:  # the key tracks are read beside the random-init control
            from linebreak.capture.control import control_model, trained_config
            from linebreak.hooks.load import ensure_eager, place

            control = place(control_model(model, corpus, trained_config(args.model)), cfg.device, cfg.dtype)
            ensure_eager(control)
        result = column_analysis(model, corpus, cfg, tokenizer=tokenizer, control=control)
        plot, show = plot_columns, print_columns
    else:
        result = qk_analysis(model, corpus, cfg, tokenizer=tokenizer)
        plot, show = plot_qk, print_table
    result = dataclasses.replace(result, model=str(Path(args.model).resolve()), corpus=str(Path(args.corpus).resolve()))
    figures = plot(result, args.figures)
    result.save(out / "qk.json")
    show(result)
    print(f"wrote {out / 'qk.json'} and {len(figures)} figures in {args.figures}")
    return 0
