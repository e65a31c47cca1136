"""``linebreak capture``: run a model over a corpus split and save activations under TransformerLens names.

With ``--control`` the same capture is also run on a randomly initialised model of the same architecture
(saved in ``OUT/control``; the study's control: a linebreak-trained model's own initial weights, another
model re-initialised from its config with seed 0): an untrained model already yields a ramp in the count, so
geometry numbers mean little without that control beside them.

``--device cpu|cuda`` and ``--dtype float32|bfloat16|float16`` say where the model (and the control) runs and in
what precision; the activations are kept as float32 on the CPU (``--store-dtype float16`` halves them), and
capture.json records the device and dtype. A big model: ``--layers``, fewer ``--sites``, ``--max-tokens`` and
``--max-gb`` bound what is held (a capture over the bound is refused before the model runs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from linebreak.config import add_config_args, resolve_config


def register(subparsers) -> None:
    from linebreak.capture.config import CaptureConfig

    p = subparsers.add_parser("capture", help="save a model's activations and token labels",
                              description=__doc__)
    p.add_argument("--model", default="data/model",
                   help="model folder, any HF causal LM with its tokenizer (default: data/model)")
    p.add_argument("--corpus", default="data/corpus", help="corpus folder (linebreak generate; default: data/corpus)")
    p.add_argument("--out", default="runs/capture", help="output folder (default: runs/capture)")
    p.add_argument("--control", action="store_true",
                   help="also capture a randomly initialised model of the same config into OUT/control")
    p.add_argument("--control-seed", type=int, default=None,
                   help="seed of the control's weights (default: the study's: a linebreak model's init_seed, "
                        "else 0)")
    p.add_argument("--force", action="store_true", help="overwrite existing activations in --out")
    add_config_args(p, CaptureConfig, "capture settings")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linebreak.capture.collect import capture
    from linebreak.capture.config import CaptureConfig
    from linebreak.capture.control import control_model, trained_config
    from linebreak.capture.store import MARKER, save_activations
    from linebreak.corpus.store import load_corpus
    from linebreak.hooks.load import check_tokenizer_matches, load_model, place
    from linebreak.io import prepare_out_dir

    cfg = resolve_config(CaptureConfig, {"default": CaptureConfig()}, "default", args)
    out = Path(args.out)
    corpus = load_corpus(args.corpus)
    model, tokenizer = load_model(args.model, cfg.device, cfg.dtype)
    check_tokenizer_matches(tokenizer, corpus)
    prepare_out_dir(out, args.force, MARKER)
    runs = [(out, model)]
    trained = trained_config(args.model)
    seed = args.control_seed if args.control_seed is not None else trained.init_seed if trained else 0
    if args.control:
        runs.append((out / "control", place(control_model(model, corpus, trained, seed), cfg.device, cfg.dtype)))
    print(f"{'run':<10}{'rows':>8}{'docs':>6}{'layers':>8}  sites")
    for path, m in runs:
        acts = capture(m, corpus, cfg)
        control = path != out
        acts.meta["model"] = {"path": str(Path(args.model).resolve()), "control": control,
                              "control_seed": seed if control else None, "device": cfg.device, "dtype": cfg.dtype}
        save_activations(acts, path)
        print(f"{'control' if control else 'model':<10}{acts.meta['n_rows']:>8}{acts.meta['n_docs']:>6}"
              f"{len(acts.meta['layers']):>8}  {','.join(acts.meta['sites'])}")
    print(f"activations written to {out}")
    return 0
