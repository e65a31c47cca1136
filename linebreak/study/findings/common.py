"""What every finding module shares: the rule check and the number format.

Each finding carries the measured value, the rule that decides whether it agrees with its literature anchor
(``checks``: a list of ``[name, value, op, threshold]`` that must all hold), and the figure that shows it.
A test recomputes every verdict from those checks, so the words in the report cannot drift from the numbers.
"""

from __future__ import annotations

import operator

from linebreak.study.report import Finding

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


def check(checks: list[list]) -> bool | None:
    """All ``[name, value, op, threshold]`` hold; None if a value is missing (not measured)."""
    if any(v is None for _, v, _, _ in checks):
        return None
    return all(OPS[op](v, t) for _, v, op, t in checks)


def _f(key, section, sentence, value, anchor, checks, figure=None, **details) -> Finding:
    return Finding(key, section, sentence, value, anchor, check(checks) if checks else None, figure,
                   {"checks": checks, **details})


def _num(x, spec: str, missing: str = "-") -> str:
    """``x`` formatted with ``spec``; ``missing`` where it was not measured (NaN is stored as null in JSON)."""
    return missing if x is None else format(x, spec)
