"""Write real prose with a small vocabulary, for ``linebreak generate --text``.

    python scripts/prose_text.py --out runs/text/prose.txt /usr/share/vim/vim90/doc /usr/share/doc/nodejs/api

Reads every ``.txt`` and ``.md`` file under the given files or folders (sorted by path), splits it on
whitespace and lowercases it. Words longer than ``--max-word-len`` characters are dropped (they would not fit
the narrowest line); the ``--vocab`` most frequent words are kept as they are and every other word becomes a
run of ``_`` of the same length, so the character counts that line breaking needs are exact while the
vocabulary stays small enough for a CPU model. The point is a residual stream crowded by real syntax
(docs/research/twist.md, sixth pass), as the paper's prose crowds Claude's. Same inputs, same bytes. An existing file is
kept unless ``--force``; the new one is written to a temporary name and renamed.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from linebreak.io import UserError, refuse_existing_file, write_text


def prose_words(paths: list[Path], vocab: int, max_word_len: int) -> list[str]:
    """The lowercased words of every ``.txt``/``.md`` file under ``paths``, rare ones as ``_`` runs."""
    files = sorted({f for p in paths for f in ([p] if p.is_file() else
                                                [*p.rglob("*.txt"), *p.rglob("*.md")])})
    words = [w for f in files for w in f.read_text(encoding="utf-8", errors="replace").lower().split()
             if len(w) <= max_word_len]
    if not words:
        raise ValueError("no words found in the inputs")
    counts = sorted(Counter(words).items(), key=lambda kv: (-kv[1], kv[0]))  # ties by spelling: same bytes
    keep = {w for w, _ in counts[:vocab]}
    return [w if w in keep else "_" * len(w) for w in words]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="+", type=Path, help="text files or folders")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--vocab", type=int, default=2000, help="most frequent words kept as they are")
    p.add_argument("--max-word-len", type=int, default=12, help="longer words are dropped")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    a = p.parse_args(argv)
    missing = [str(x) for x in a.inputs if not x.exists()]
    try:
        refuse_existing_file(a.out, a.force)
        if missing:
            raise ValueError(f"not found: {', '.join(missing)}")
        if a.vocab < 1 or a.max_word_len < 1:
            raise ValueError("--vocab and --max-word-len must be >= 1")
        words = prose_words(a.inputs, a.vocab, a.max_word_len)
    except (ValueError, UserError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_text(a.out, " ".join(words) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
