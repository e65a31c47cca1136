"""The ``linebreak`` command line: one sub-command per pipeline stage.

Each sub-command lives in ``linebreak/commands/<name>.py`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func``. Modules import their heavy dependencies (torch, transformers, umap) inside
``func``, so ``linebreak --help`` stays fast. A :class:`~linebreak.io.UserError` anywhere becomes one line on
stderr and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from linebreak import __version__
from linebreak.io import UserError
from linebreak.progress import quiet_libraries

COMMANDS = ["generate", "train", "capture", "probe", "plot", "qk", "causal", "grok", "sweep", "study"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linebreak",
        description="Fixed-width line breaking in small transformers: corpora, training, probes, "
        "the count manifold, the QK twist, and the mod-P Fourier reference.",
    )
    parser.add_argument("--version", action="version", version=f"linebreak {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"linebreak.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"linebreak.commands.{name}":
                continue  # stage not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    quiet_libraries()  # no progress bars in a log, Hugging Face's included
    try:
        rc = args.func(args)
    except UserError as e:
        print(f"linebreak {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"linebreak {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
