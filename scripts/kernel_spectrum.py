"""The similarity over counts a corpus induces, beside the PC spectra of trained models' count centroids.

    python scripts/kernel_spectrum.py data/corpus                                   # the task alone
    python scripts/kernel_spectrum.py runs/study/corpus --probe runs/study/probe --probe runs/study/probe/control
    python scripts/kernel_spectrum.py data/tables --given next_col --out runs/kernel.json

The corpus' task centroids (:mod:`linebreak.probe.kernel`: the next-token distribution per count, within each
value of ``--given``; default ``width``, ``none`` pools every document) are measured as the probe stage measures
a model's centroids: PC spectrum, PC1, top 6, peak width, and the gated ringing of the full and the rank-6
centroids. Each ``--probe`` folder (or ``probe.json``) adds one row per analysed layer with its centroids' numbers,
so the prediction made before training stands beside what each model drew (its ringing behind the same gate,
with its count probe's R^2 as the gate's second condition). ``--out`` writes the kernel as JSON
(format ``linebreak-kernel/1``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from linebreak.io import UserError


def _row(name: str, ratio, pc1: float, top6: float, peak: float, changes) -> str:
    spec = " ".join(f"{r:.2f}" for r in list(ratio)[:6])
    return f"| {name} | {pc1:.3f} | {top6:.3f} | {peak:.1f} | {changes} | {spec} |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", help="a corpus folder (linebreak generate, or a study's corpus/)")
    p.add_argument("--given", default="width", help="label the similarity is taken within; none: pooled")
    p.add_argument("--split", default="train")
    p.add_argument("--max-docs", type=int, default=None,
                   help="first documents of the split (default: all; fewer documents leave sparser per-count "
                        "distributions, whose noise reads as a narrower similarity)")
    p.add_argument("--probe", action="append", default=[], help="a probe folder or probe.json (repeatable)")
    p.add_argument("--out", help="write the kernel here as JSON")
    args = p.parse_args(argv)
    try:
        from linebreak.corpus.store import load_corpus
        from linebreak.probe.kernel import corpus_kernel
        from linebreak.probe.result import load_probe
        from linebreak.probe.ringing import gated_ringing

        given = None if args.given.lower() == "none" else args.given
        k = corpus_kernel(load_corpus(args.corpus), args.split, given, args.max_docs)
        probes = [(src, load_probe(Path(src).parent if Path(src).is_file() else src)) for src in args.probe]
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Task centroids of {args.corpus} ({args.split}, given {given}): counts {k.counts[0]}-{k.counts[-1]}, "
          f"{k.n_tokens} tokens.\n")
    print("| centroids | PC1 | top 6 | peak width | sign changes (gated) | PC spectrum (top 6) |")
    print("|---|---|---|---|---|---|")
    g, g6 = k.ringing, k.ringing_rank6
    print(_row("task", k.pca_ratio, k.pc1, k.top6, k.peak_width, g["sign_changes"] if g["gate_open"] else "closed"))
    print(_row("task, rank 6", k.pca_ratio[:6], k.pc1 / max(k.top6, 1e-12), 1.0, float("nan"),
               g6["sign_changes"] if g6["gate_open"] else "closed").replace("| nan |", "| - |"))
    for src, res in probes:
        for key, layer in res.layers.items():
            geo = layer.centroids
            gate = gated_ringing(res.tensors[f"{key}.centroids"], res.tensors[f"{key}.centroids.values"],
                                 probe_r2=layer.probes["count"].r2_test)
            print(_row(f"{src} {key}", geo.pca.ratio, float(geo.pca.ratio[0]), geo.pca.top6, geo.peak_width,
                       gate["sign_changes"] if gate["gate_open"] else "closed"))
    if args.out:
        k.save(args.out)
        print(f"\nkernel: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
