"""What every finding module shares: the rule check and the number format.

Each finding carries the measured value, the rule that decides whether it agrees with its literature anchor
(``checks``: a list of ``[name, value, op, threshold]`` that must all hold), and the figure that shows it.
A test recomputes every verdict from those checks, so the words in the report cannot drift from the numbers.
"""

from __future__ import annotations

import math
import numbers
import operator

from linebreak.study.report import Finding

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


def undefined(x) -> bool:
    """``x`` was not measured or is not defined: None, or NaN (a typed result reads JSON null as NaN)."""
    return x is None or isinstance(x, numbers.Real) and math.isnan(x)


def check(checks: list[list]) -> bool | None:
    """All ``[name, value, op, threshold]`` hold; None if a value is missing (not measured)."""
    if any(undefined(v) for _, v, _, _ in checks):
        return None
    return all(OPS[op](v, t) for _, v, op, t in checks)


def _f(key, section, sentence, value, anchor, checks, figure=None, **details) -> Finding:
    return Finding(key, section, sentence, value, anchor, check(checks) if checks else None, figure,
                   {"checks": checks, **details})


def _num(x, spec: str, missing: str = "-") -> str:
    """``x`` formatted with ``spec``; ``missing`` where it was not measured (None or NaN: null in JSON)."""
    return missing if undefined(x) else format(x, spec)
