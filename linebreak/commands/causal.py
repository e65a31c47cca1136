"""``linebreak causal``: ablate the top boundary heads and the count subspace, patch the count, and insert
distractor strings mid-line; report newline loss against the loss on other tokens (JSON + table).

``--device cpu|cuda`` and ``--dtype float32|bfloat16|float16``: where the model runs and in what precision (the
losses are summed in float32; causal.json's config records both). Without ``--qk`` the QK analysis runs first,
on the same model as placed.
"""

from __future__ import annotations

import argparse

from linebreak.config import add_config_args, resolve_config


def register(subparsers) -> None:
    from linebreak.causal.config import CausalConfig

    p = subparsers.add_parser("causal", help="causal checks of the boundary heads and count subspace",
                              description=__doc__)
    p.add_argument("--model", default="data/model", help="trained model folder (linebreak train; default: data/model)")
    p.add_argument("--corpus", default="data/corpus", help="corpus folder (linebreak generate; default: data/corpus)")
    p.add_argument("--qk", default=None,
                   help="qk.json from `linebreak qk` on this model (default: run the QK analysis now)")
    p.add_argument("--out", default="runs/causal", help="folder for causal.json (default: runs/causal)")
    p.add_argument("--preset", default="default", help="settings preset: default | tiny")
    p.add_argument("--force", action="store_true", help="overwrite an existing causal.json")
    add_config_args(p, CausalConfig, "causal-check settings (default: the preset's value)")
    p.set_defaults(func=run)


def _qk_result(args, model, tokenizer, corpus, keys: str = "newline"):
    import dataclasses
    from pathlib import Path

    from linebreak.io import UserError
    from linebreak.presets import QK as PRESETS
    from linebreak.qk.analysis import qk_analysis
    from linebreak.qk.columns import ColumnQKResult, column_analysis
    from linebreak.qk.result import QKResult

    if args.qk is None:
        cfg = dataclasses.replace(PRESETS.get(args.preset, PRESETS["default"]), keys=keys)
        analyse = qk_analysis if keys == "newline" else column_analysis
        return analyse(model, corpus, cfg, tokenizer=tokenizer)
    res = (QKResult if keys == "newline" else ColumnQKResult).load(args.qk)
    if res.config.keys != keys:
        raise UserError(f"{args.qk} is a qk result for --keys {res.config.keys}, not {keys}")
    if res.model and res.model != str(Path(args.model).resolve()):
        raise UserError(f"{args.qk} was computed for another model ({res.model})")
    return res


def run(args: argparse.Namespace) -> int:
    from linebreak.causal.analysis import causal_checks
    from linebreak.causal.config import CausalConfig
    from linebreak.causal.table import table
    from linebreak.commands.qk import load_inputs
    from linebreak.io import prepare_out_dir
    from linebreak.presets import CAUSAL as PRESETS

    cfg = resolve_config(CausalConfig, PRESETS, args.preset, args)
    model, tokenizer, corpus = load_inputs(args, cfg)  # a bad model folder or device: nothing created yet
    out = prepare_out_dir(args.out, args.force, "causal.json")
    if cfg.keys != "newline":
        from linebreak.causal.columns import column_causal

        res = column_causal(model, corpus, _qk_result(args, model, tokenizer, corpus, cfg.keys), cfg, tokenizer)
        res.save(out / "causal.json")
        for h in res.heads:
            print(f"{h.head}: removing it raises the pad loss by {h.head_removed:+.4f} nats; its {cfg.keys} keys "
                  f"resampled from the same column {h.resample_same_column:+.4f} (share {h.same_column_share:.2f}), "
                  f"from other columns {h.resample_other_column:+.4f} (share {h.other_column_share:.2f}), "
                  f"from the same column of their own document {h.resample_same_document:+.4f} "
                  f"(share {h.same_document_share:.2f}), their mean {h.mean:+.4f}")
        print(f"wrote {out / 'causal.json'}")
        return 0
    res = causal_checks(model, corpus, _qk_result(args, model, tokenizer, corpus), cfg, tokenizer=tokenizer)
    res.save(out / "causal.json")
    print(table(res))
    print(f"wrote {out / 'causal.json'}")
    return 0
