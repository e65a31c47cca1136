"""Write a text of synthetic words that follow a random sparse bigram model, for ``linebreak generate --text``.

    python scripts/markov_text.py --out runs/text/markov.txt

The words are drawn like the default corpus's (500 types of 1-12 letters, Zipf 0.8; with ``--seed 0`` the
very same words); each may be followed by ``--successors`` others
(:func:`linebreak.corpus.words.markov_chain`). Same seed, same bytes. An existing file is kept unless
``--force``; the new one is written to a temporary name and renamed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from linebreak.corpus.store import CorpusConfig
from linebreak.corpus.words import markov_chain, markov_word_ids, synthetic_vocab
from linebreak.io import UserError, refuse_existing_file, write_text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--words", type=int, default=6_000_000, help="words to write")
    p.add_argument("--successors", type=int, default=8, help="possible next words per word")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace an existing file")
    a = p.parse_args(argv)
    c = CorpusConfig()
    vocab = synthetic_vocab(c.vocab_size, c.min_word_len, c.max_word_len, c.zipf, a.seed)
    rng = np.random.default_rng([a.seed, 7])
    try:
        refuse_existing_file(a.out, a.force)
        if a.words < 1:
            raise ValueError(f"--words must be >= 1, got {a.words}")
        T = markov_chain(vocab, a.successors, rng)
    except (ValueError, UserError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ids = markov_word_ids(T, a.words, rng)
    words = np.array(vocab.words, dtype=object)[ids]
    write_text(a.out, " ".join(words) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
