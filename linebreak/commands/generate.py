"""``linebreak generate``: write a wrapped-text corpus folder (synthetic words, or ``--text FILE``), or with
``--layout table`` one of column-aligned tables (``linebreak.corpus.tables``), mixed with prose by
``--table-fraction``. A word of the text longer than the line stands alone on its own line
(``--long-words alone``, the default) or refuses the text (``--long-words refuse``)."""

from __future__ import annotations

import argparse

from linebreak.config import add_config_args, resolve_config


def register(subparsers) -> None:
    from linebreak.corpus.store import CorpusConfig

    p = subparsers.add_parser("generate", help="generate a fixed-width wrapped corpus",
                              description=__doc__)
    p.add_argument("--out", default="data/corpus", help="corpus folder to create (default: data/corpus)")
    p.add_argument("--preset", default="default",
                   help="data preset: the corpus of the training preset of this name (see linebreak.presets.TRAIN)")
    p.add_argument("--force", action="store_true", help="replace an existing corpus in --out")
    add_config_args(p, CorpusConfig, "data settings (default: the preset's value)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linebreak.corpus.store import CorpusConfig, generate_corpus, load_corpus
    from linebreak.presets import TRAIN as PRESETS

    cfg = resolve_config(CorpusConfig, {k: v.data for k, v in PRESETS.items()}, args.preset, args)
    out = generate_corpus(cfg, args.out, force=args.force)
    meta = load_corpus(out).meta
    print(f"corpus written to {out} (fingerprint {meta['fingerprint']})")
    print(f"{'split':<12}{'documents':>10}{'tokens':>12}{'newlines':>10}")
    for name, s in meta["stats"].items():
        print(f"{name:<12}{s['documents']:>10}{s['tokens']:>12}{s['newlines']:>10}")
    print(f"widths {min(meta['widths'])}..{max(meta['widths'])} ({len(meta['widths'])} values), "
          f"{meta['n_word_types']} word types, vocabulary {meta['vocab_size']} tokens")
    if "long_words" in meta["config"]:
        words, tokens = (sum(s[k] for s in meta["stats"].values()) for k in ("over_long_words", "over_long_tokens"))
        print(f"over-long words (longer than the line, each alone on its own line, labelled over_long): {words} "
              f"({tokens} tokens with the newlines ending their lines)")
    if meta.get("table"):
        s = meta["stats"]["train"]
        print(f"tables: {s['table_documents']} of {s['documents']} training documents ({s['shifted_documents']} "
              f"with empty cells), {s['table_rows']} rows, {s.get('overflowing_cells', 0)} overflowing cells, "
              f"{s['pads']} pads ({s['pads_determined']} determined); "
              f"pad tokens of {meta['table']['min_pad']}..{meta['table']['max_pad']} spaces")
    return 0
