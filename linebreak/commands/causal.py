"""``linebreak causal``: ablate the top boundary heads and the count subspace, patch the count, and insert
distractor strings mid-line; report newline loss against the loss on other tokens (JSON + table)."""

from __future__ import annotations

import argparse

from linebreak.config import add_config_args, resolve_config


def register(subparsers) -> None:
    from linebreak.causal.analysis import CausalConfig

    p = subparsers.add_parser("causal", help="causal checks of the boundary heads and count subspace",
                              description=__doc__)
    p.add_argument("--model", default="data/model", help="trained model folder (linebreak train; default: data/model)")
    p.add_argument("--corpus", default="data/corpus", help="corpus folder (linebreak generate; default: data/corpus)")
    p.add_argument("--qk", default=None,
                   help="qk.json from `linebreak qk` on this model (default: run the QK analysis now)")
    p.add_argument("--out", default="probes/causal", help="folder for causal.json (default: probes/causal)")
    p.add_argument("--preset", default="default", help="settings preset: default | tiny")
    p.add_argument("--force", action="store_true", help="overwrite an existing causal.json")
    add_config_args(p, CausalConfig, "causal-check settings (default: the preset's value)")
    p.set_defaults(func=run)


def _qk_result(args, model, tokenizer, corpus) -> dict:
    from pathlib import Path

    from linebreak.io import UserError, load_json
    from linebreak.presets import QK as PRESETS
    from linebreak.qk.analysis import qk_analysis

    if args.qk is None:
        return qk_analysis(model, corpus, PRESETS.get(args.preset, PRESETS["default"]), tokenizer=tokenizer)
    res = load_json(args.qk, "QK result")
    if not isinstance(res, dict) or not isinstance(res.get("heads"), list):
        raise UserError(f"not a QK result (no 'heads' list): {args.qk}")
    if res.get("model") and res["model"] != str(Path(args.model).resolve()):
        raise UserError(f"{args.qk} was computed for another model ({res['model']})")
    return res


def print_table(res: dict) -> None:
    def row(name, r):
        print(f"{name:<28} {r['newline_loss']:>8.4f} {r['other_loss']:>8.4f} {r['d_newline']:>+9.4f} "
              f"{r['d_other']:>+9.4f}")

    b = res["baseline"]
    print(f"{'condition':<28} {'NL loss':>8} {'other':>8} {'ΔNL':>9} {'Δother':>9}")
    print(f"{'baseline':<28} {b['newline_loss']:>8.4f} {b['other_loss']:>8.4f}")
    ha = res["head_ablation"]
    row(f"ablate top {ha['top_head']}", ha["top"])
    row(f"ablate top {len(ha['top_n_heads'])} heads", ha["top_n"])
    if ha["random"] is not None:
        row(f"ablate random {ha['random_head']}", ha["random"])
    row("ablate all heads of layer", ha["all_heads_of_layer"])
    for name, k in res.get("key_ablation", {}).items():
        row(f"{name}: mean newline keys", k["mean"])
        row(f"{name}: resampled newline keys", k["resample"])
        row(f"{name}: same-length keys", k["resample_same_length"])
    sa = res["subspace_ablation"]
    row(f"count subspace L{sa['layer']} ({sa['dim']}-d)", sa["count_subspace"])
    rm = sa["random_mean"]
    print(f"{'random subspaces (mean)':<28} {'':>8} {'':>8} {rm['d_newline']:>+9.4f} {rm['d_other']:>+9.4f}")
    pc = res["patching"]
    print("count patching, P(newline) by shift: " + "  ".join(f"{c['delta']:+d}:{c['p_newline']:.3f}"
                                                             for c in pc["curve"])
          + f"  (Spearman {pc['spearman']:+.2f})")
    ins = res["insertion"]
    if ins.get("strings"):
        print(f"insertion sweep on {ins['sites']} lines (attention of {', '.join(ins['heads'])}):")
        for s in ins["strings"]:
            print(f"  {s['string']!r:<22} +{s['n_chars']:>2} chars  ΔP(newline) {s['delta']:+.4f}  "
                  f"attention to insert {s['attention_to_insert']:.3f}")


def run(args: argparse.Namespace) -> int:
    from linebreak.causal.analysis import CausalConfig, causal_checks
    from linebreak.commands.qk import load_inputs
    from linebreak.io import prepare_out_dir, save_json
    from linebreak.presets import CAUSAL as PRESETS

    cfg = resolve_config(CausalConfig, PRESETS, args.preset, args)
    out = prepare_out_dir(args.out, args.force, "causal.json")
    model, tokenizer, corpus = load_inputs(args)
    qk = _qk_result(args, model, tokenizer, corpus)
    res = causal_checks(model, corpus, qk, cfg, tokenizer=tokenizer)
    save_json(out / "causal.json", res)
    print_table(res)
    print(f"wrote {out / 'causal.json'}")
    return 0
