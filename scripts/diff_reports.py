"""Diff two result files (a study's ``report.json``, a grok ``summary.json``, any stage JSON) value by value.

Both files are walked as trees. Every number and string that differs is printed with its path, then the
count of numbers compared; the exit status is 0 when nothing differs, 1 when something does (a value, or a
value present in one file only), 2 on bad input. What a rerun may change is ignored: wall times (``wall_s``,
``*_seconds``, ``tokens_per_second``, ``total_wall_s``, ``stages_wall_s``), fingerprints, paths (``path``,
``figure``, ``*_path``), ``versions`` and the ``format`` key of a typed result; ``--ignore KEY`` ignores more
(e.g. ``--ignore settings`` when the settings' layout changed). ``--rename OLD=NEW`` compares a key (or a whole
string value) ``OLD`` of either file as ``NEW``, for a renamed section or stage. Lists of objects that each
carry a unique ``key`` or ``name`` (findings, heads) are matched by it, other lists by position. Numbers
must be equal exactly (the refactors this checks promise bit-identical numbers); ``1`` and ``1.0`` are equal,
``true`` and ``1`` are not. ``--rtol R`` (for two machines, whose float64 kernels round differently) counts
numbers within a relative difference ``R`` as equal and says how many there were; ``--max-lines N`` prints
the first ``N`` differences and then a count per top-level section.

    python scripts/diff_reports.py figures/study/report.json runs/study/report.json --rename manifold=probe
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path
from typing import Any

IGNORED = ("wall_s", "*_seconds", "tokens_per_second", "total_wall_s", "stages_wall_s", "fingerprint",
           "*_fingerprint", "path", "*_path", "figure", "versions", "format")


class Diff:
    """Walks two JSON trees; collects the differences and counts what was compared."""

    def __init__(self, ignore: tuple[str, ...] = IGNORED, rename: dict[str, str] | None = None, rtol: float = 0.0):
        self.ignore, self.rename, self.rtol = ignore, rename or {}, rtol
        self.lines: list[str] = []
        self.numbers = self.strings = self.within_rtol = 0

    def _ignored(self, key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, pat) for pat in self.ignore)

    def _key(self, key: str) -> str:
        return self.rename.get(key, key)

    def _value(self, v: Any) -> Any:
        return self.rename.get(v, v) if isinstance(v, str) else v

    def walk(self, a: Any, b: Any, path: str = "") -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            self._dicts(a, b, path)
        elif isinstance(a, list) and isinstance(b, list):
            self._lists(a, b, path)
        else:
            self._leaves(self._value(a), self._value(b), path)

    def _dicts(self, a: dict, b: dict, path: str) -> None:
        ra = {self._key(k): v for k, v in a.items()}
        rb = {self._key(k): v for k, v in b.items()}
        for k in list(ra) + [k for k in rb if k not in ra]:
            if self._ignored(k):
                continue
            sub = _join(path, k)
            if k not in rb:
                self.lines.append(f"{sub}: only in the first file ({_short(ra[k])})")
            elif k not in ra:
                self.lines.append(f"{sub}: only in the second file ({_short(rb[k])})")
            else:
                self.walk(ra[k], rb[k], sub)

    def _lists(self, a: list, b: list, path: str) -> None:
        ident = _identity(a)
        if ident and ident == _identity(b):
            ka, kb = ({self._value(x[ident]): x for x in s} for s in (a, b))
            for k in list(ka) + [k for k in kb if k not in ka]:
                sub = f"{path}[{ident}={k}]"
                if k not in kb or k not in ka:
                    self.lines.append(f"{sub}: only in the {'first' if k in ka else 'second'} file")
                else:
                    self.walk(ka[k], kb[k], sub)
            return
        if len(a) != len(b):
            self.lines.append(f"{path}: {len(a)} items in the first file, {len(b)} in the second")
        for i, (x, y) in enumerate(zip(a, b)):
            self.walk(x, y, f"{path}[{i}]")

    def _leaves(self, a: Any, b: Any, path: str) -> None:
        num = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
        if num(a) and num(b):
            self.numbers += 1
            same = a == b
            if not same and abs(a - b) <= self.rtol * max(abs(a), abs(b)):
                self.within_rtol += 1
                same = True
        else:
            self.strings += isinstance(a, str) and isinstance(b, str)
            same = type(a) is type(b) and a == b
        if not same:
            self.lines.append(f"{path}: {_short(a)} -> {_short(b)}")


def _identity(items: list) -> str | None:
    """``key`` or ``name`` if every item is an object carrying that field with a unique value."""
    if not items or not all(isinstance(x, dict) for x in items):
        return None
    for field in ("key", "name"):
        vals = [x.get(field) for x in items]
        if all(isinstance(v, str) for v in vals) and len(set(vals)) == len(vals):
            return field
    return None


def _join(path: str, key: str) -> str:
    part = f'["{key}"]' if "." in key or " " in key else key
    return f"{path}{part}" if part.startswith("[") or not path else f"{path}.{part}"


def _short(v: Any, n: int = 80) -> str:
    s = json.dumps(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def diff_files(a: str | Path, b: str | Path, ignore: tuple[str, ...] = IGNORED,
               rename: dict[str, str] | None = None, rtol: float = 0.0) -> Diff:
    d = Diff(ignore, rename, rtol)
    d.walk(_load(a), _load(b))
    return d


def _load(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(_fail(f"file not found: {path}")) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SystemExit(_fail(f"not valid JSON: {path} ({e})")) from None


def _fail(msg: str) -> int:
    print(f"diff_reports: error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("first", help="the reference file (e.g. the committed report.json)")
    ap.add_argument("second", help="the file to check against it")
    ap.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                    help="compare key (or string value) OLD as NEW; repeatable")
    ap.add_argument("--ignore", action="append", default=[], metavar="KEY",
                    help="also ignore this key (shell-style pattern, e.g. 'anchor_*'); repeatable")
    ap.add_argument("--rtol", type=float, default=0.0, metavar="R",
                    help="count numbers within relative difference R as equal (default 0: exact)")
    ap.add_argument("--max-lines", type=int, default=None, metavar="N",
                    help="print at most N differences, then a count per top-level section")
    args = ap.parse_args(argv)
    if args.rtol < 0 or args.max_lines is not None and args.max_lines < 0:
        return _fail("--rtol and --max-lines must be >= 0")
    if any(r.count("=") != 1 or not all(r.split("=")) for r in args.rename):
        return _fail(f"--rename takes OLD=NEW, got {', '.join(args.rename)}")
    rename = dict(r.split("=") for r in args.rename)
    d = diff_files(args.first, args.second, IGNORED + tuple(args.ignore), rename, args.rtol)
    for line in d.lines[: args.max_lines]:
        print(line)
    if args.max_lines is not None and len(d.lines) > args.max_lines:
        sections: dict[str, int] = {}
        for line in d.lines:
            top = ".".join(line.split(":")[0].split(".")[:2])
            sections[top] = sections.get(top, 0) + 1
        print(f"... {len(d.lines) - args.max_lines} more; all differences by section: "
              + ", ".join(f"{k} {n}" for k, n in sections.items()))
    within = f", {d.within_rtol} more equal within rtol {args.rtol:g}" if args.rtol else ""
    print(f"{len(d.lines)} difference(s){within}; compared {d.numbers} numbers and {d.strings} strings "
          f"(ignored: {', '.join(IGNORED + tuple(args.ignore))})")
    return 1 if d.lines else 0


if __name__ == "__main__":
    raise SystemExit(main())
