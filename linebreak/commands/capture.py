"""``linebreak capture``: run a model over a corpus split and save activations under TransformerLens names.

With ``--control`` the same capture is also run on a randomly initialised model of the same configuration
(saved in ``OUT/control``): an untrained model already yields a ramp in the count, so geometry numbers mean
little without that control beside them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from linebreak.config import add_config_args, resolve_config


def register(subparsers) -> None:
    from linebreak.capture.activations import CaptureConfig

    p = subparsers.add_parser("capture", help="save a model's activations and token labels",
                              description=__doc__)
    p.add_argument("--model", default="data/model",
                   help="model folder, any HF causal LM with its tokenizer (default: data/model)")
    p.add_argument("--corpus", default="data/corpus", help="corpus folder (linebreak generate; default: data/corpus)")
    p.add_argument("--out", help="output folder (default: probes/<model folder name>)")
    p.add_argument("--control", action="store_true",
                   help="also capture a randomly initialised model of the same config into OUT/control")
    p.add_argument("--control-seed", type=int, default=0, help="seed of the control model's weights")
    p.add_argument("--force", action="store_true", help="overwrite existing activations in --out")
    add_config_args(p, CaptureConfig, "capture settings")
    p.set_defaults(func=run)


def random_control(model, seed: int = 0):
    """A randomly initialised model with ``model``'s configuration (eager attention, eval mode)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(model.config, attn_implementation="eager").eval()


def run(args: argparse.Namespace) -> int:
    from linebreak.capture.activations import MARKER, CaptureConfig, capture, save_activations
    from linebreak.corpus.store import load_corpus
    from linebreak.hooks.arch import check_tokenizer_matches, load_model
    from linebreak.io import prepare_out_dir

    cfg = resolve_config(CaptureConfig, {"default": CaptureConfig()}, "default", args)
    out = Path(args.out or Path("probes") / Path(args.model).resolve().name)
    corpus = load_corpus(args.corpus)
    model, tokenizer = load_model(args.model)
    check_tokenizer_matches(tokenizer, corpus)
    prepare_out_dir(out, args.force, MARKER)
    runs = [(out, model)]
    if args.control:
        runs.append((out / "control", random_control(model, args.control_seed)))
    print(f"{'run':<10}{'rows':>8}{'docs':>6}{'layers':>8}  sites")
    for path, m in runs:
        acts = capture(m, corpus, cfg)
        control = path != out
        acts.meta["model"] = {"path": str(Path(args.model).resolve()), "control": control,
                              "control_seed": args.control_seed if control else None}
        save_activations(acts, path)
        print(f"{'control' if control else 'model':<10}{acts.meta['n_rows']:>8}{acts.meta['n_docs']:>6}"
              f"{len(acts.meta['layers']):>8}  {','.join(acts.meta['sites'])}")
    print(f"activations written to {out}")
    return 0
