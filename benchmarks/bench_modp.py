"""Training speed of the mod-P model: logits read only at ``=`` against the straightforward model, one run.

    .venv/bin/python benchmarks/bench_modp.py [--preset nanda|fast] [--steps 40] [--threads 1]

Both are the same weights (the '='-only forward is checked to give the same logits first). A full-batch
AdamW step of each is timed, interleaved step by step so machine load hits both alike; the script prints
steps per second of each and their ratio.
"""

from __future__ import annotations

import argparse
import copy
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="nanda")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from linebreak.grok.analysis import cross_entropy
    from linebreak.grok.data import make_data
    from linebreak.grok.model import Transformer
    from linebreak.presets import GROK as PRESETS

    torch.set_num_threads(args.threads)
    cfg = PRESETS[args.preset]
    data = make_data(cfg.p, cfg.frac_train, cfg.seed)
    x, y = data.tokens[data.train_idx], data.labels[data.train_idx]
    fast = Transformer(cfg.shape(), seed=cfg.seed)
    plain = copy.deepcopy(fast)
    with torch.no_grad():
        diff = (fast(x) - plain.forward_all_positions(x)).abs().max().item()
    runs = {"'=' only": (fast, fast.forward), "all positions": (plain, plain.forward_all_positions)}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                 betas=(cfg.beta1, cfg.beta2)) for k, (m, _) in runs.items()}
    elapsed = dict.fromkeys(runs, 0.0)
    for step in range(args.steps + 3):
        for name, (_, fwd) in runs.items():
            t = time.perf_counter()
            loss = cross_entropy(fwd(x), y)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
            if step >= 3:  # warm-up steps are not timed
                elapsed[name] += time.perf_counter() - t
    rate = {k: args.steps / v for k, v in elapsed.items()}
    print(f"preset {args.preset}: P = {cfg.p}, {len(x)} training pairs, {args.threads} thread(s), "
          f"{args.steps} timed steps each; max |logit difference| at init {diff:.2e}")
    for k, v in rate.items():
        print(f"  {k:<14} {v:7.2f} steps/s  ({1000 / v:6.1f} ms/step)")
    fast_rate, plain_rate = rate.values()
    print(f"  speed-up of '=' only: {fast_rate / plain_rate:.2f}x")


if __name__ == "__main__":
    main()
