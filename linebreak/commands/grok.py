"""``linebreak grok``: train the mod-P addition transformer, watch it grok, and measure its Fourier circuit."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from linebreak.config import add_config_args
    from linebreak.grok.config import GrokConfig

    p = subparsers.add_parser(
        "grok", help="the mod-P grokking reference (Nanda et al. 2023)",
        description="Train Nanda's one-layer transformer on a + b mod P full-batch with AdamW, log the "
        "progress measures (restricted/excluded loss, Gini, key frequencies), detect the three phases, and "
        "write log.jsonl, summary.json, checkpoints and figures to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--preset", default="fast", help="fast (about a minute on 2 cores) or nanda (the paper)")
    p.add_argument("--out", default="runs/grok", help="output folder (default: runs/grok)")
    p.add_argument("--resume-from", default=None, metavar="CKPT",
                   help="continue from a checkpoint (.safetensors) of a run with the same P and model shape")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads; 1 makes runs repeatable bit for bit (several threads sum gradients in a "
                   "varying order)")
    p.add_argument("--force", action="store_true", help="overwrite results already in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    add_config_args(p, GrokConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linebreak.config import resolve_config
    from linebreak.grok.config import GrokConfig
    from linebreak.grok.train import run_grok
    from linebreak.presets import GROK as PRESETS

    cfg = resolve_config(GrokConfig, PRESETS, args.preset, args)
    res = run_grok(cfg, args.out, force=args.force, progress=not args.no_progress, resume_from=args.resume_from,
                   figures=not args.no_figures, threads=args.threads)
    s = res.summary
    ph, order = s.phases, s.loss_ordering
    rows = [
        ("P, train pairs / test pairs", f"{cfg.p}, {s.n_train} / {s.n_test}"),
        ("steps run", s.final_step),
        ("train accuracy 100 % at step", ph.memorised),
        ("test accuracy >= 95 % at step (grok)", ph.grok),
        ("phase ends: memorisation / circuit / clean-up", f"{ph.memorised} / {ph.circuit} / {ph.cleanup}"),
        ("final train / test accuracy", f"{s.final_train_acc:.4f} / {s.final_test_acc:.4f}"),
        ("final train / test loss", f"{s.final_train_loss:.3g} / {s.final_test_loss:.3g}"),
        ("key frequencies of W_E", f"{s.key_frequencies} ({s.n_key_frequencies})"),
        ("final restricted / excluded loss", f"{_g(s.final_restricted_loss)} / {_g(s.final_excluded_loss)}"),
        ("restricted loss falls before test loss", order["restricted_falls_before_test"]),
        ("excluded loss rises while test loss high", order["excluded_rises_while_test_high"]),
        ("neurons with >= 85 % variance in one frequency", f"{s.neurons_single_frequency_share:.1%}"),
        ("wall time", f"{s.wall_seconds:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(f"results in {res.out_dir}")
    return 0


def _g(x) -> str:
    return "n/a" if x is None else f"{x:.3g}"
