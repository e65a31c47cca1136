"""``linebreak train``: train a small transformer from scratch on a corpus folder to emit its newlines."""

from __future__ import annotations

import argparse

from linebreak.config import add_config_args, resolve_config


def register(subparsers) -> None:
    from linebreak.train.config import OptimConfig
    from linebreak.train.model import ModelConfig

    p = subparsers.add_parser("train", help="train a newline model from scratch", description=__doc__)
    p.add_argument("--corpus", default="data/corpus", help="corpus folder (default: data/corpus)")
    p.add_argument("--out", default="data/model", help="model folder to write (default: data/model)")
    p.add_argument("--preset", default="default", help="training preset (see linebreak.presets.TRAIN)")
    p.add_argument("--force", action="store_true", help="overwrite a finished or partial run in --out")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    add_config_args(p, ModelConfig, "model settings (default: the preset's value)")
    add_config_args(p, OptimConfig, "optimisation settings (default: the preset's value)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linebreak.corpus import load_corpus
    from linebreak.presets import TRAIN as PRESETS
    from linebreak.train.config import OptimConfig, TrainConfig, check_settings
    from linebreak.train.loop import train
    from linebreak.train.model import ModelConfig

    if args.force and args.resume:
        from linebreak.io import UserError

        raise UserError("--force and --resume contradict each other; choose one")
    model = resolve_config(ModelConfig, {k: v.train.model for k, v in PRESETS.items()}, args.preset, args)
    optim = resolve_config(OptimConfig, {k: v.train.optim for k, v in PRESETS.items()}, args.preset, args)
    corpus, cfg = load_corpus(args.corpus), TrainConfig(model, optim)
    fix = ""
    if PRESETS[args.preset].data.seq_len <= model.n_ctx:  # the preset's own corpus fits: say how to make it
        fix = (f", or remake the corpus with this preset: linebreak generate --preset {args.preset} "
               f"--out {args.corpus} --force")
    check_settings(cfg, corpus.meta["seq_len"], fix)
    result = train(cfg, corpus, args.out, force=args.force, resume=args.resume)
    m = result.metrics
    print(f"model written to {result.out_dir} ({m.n_params:,} parameters, {m.train_seconds:.0f} s, "
          f"{m.tokens_per_second:,.0f} tokens/s)")
    if model.count_code_control:
        print(f"count-code control on: the count added to the input as sinusoids of periods "
              f"{','.join(map(str, model.count_code_periods))} (norm {model.count_code_norm:g})")
    rows = [("newline CE (nats)", m.newline_ce), ("  posterior Bayes", m.newline_ce_posterior),
            ("  oracle-width Bayes", m.newline_ce_oracle), ("  constant rate", m.newline_ce_constant),
            ("info captured (vs posterior)", m.info_captured),
            ("info captured (vs oracle)", m.info_captured_oracle),
            ("forced-break accuracy", m.forced_break_acc),
            ("  Bayes ceiling (first lines)", m.forced_break_acc_bayes),
            ("  where knowable", m.forced_break_acc_knowable), ("no-break accuracy", m.no_break_acc),
            ("newline accuracy", m.newline_acc), ("  posterior Bayes", m.newline_acc_posterior)]
    if m.pad_positions_row0 is not None:  # a table corpus: the pad lengths by row, beside the Bayes reference
        for row, what in (("row0", "row 0"), ("rows1", "rows >= 1")):
            rows += [(f"pad accuracy, {what}", getattr(m, f"pad_acc_{row}")),
                     ("  Bayes", getattr(m, f"pad_acc_bayes_{row}")),
                     (f"pad CE, {what} (nats)", getattr(m, f"pad_ce_{row}")),
                     ("  Bayes", getattr(m, f"pad_ce_bayes_{row}"))]
    for name, value in rows:
        print(f"{name:<30}{'n/a' if value is None else format(value, '.3f'):>8}")  # None: not defined
    return 0
