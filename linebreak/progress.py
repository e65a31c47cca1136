"""Progress bars that show on a terminal and stay out of logs.

Every long loop in linebreak goes through :func:`bar`: a ``tqdm`` bar when stderr is a terminal, and nothing
when it is not (a log file, CI, a pipe), where one line per update would bury the messages that matter.
``LINEBREAK_PROGRESS=1`` forces the bars on, ``=0`` forces them off.
"""

from __future__ import annotations

import os
import sys


def enabled() -> bool:
    """Whether bars are drawn: ``LINEBREAK_PROGRESS`` if set, else whether stderr is a terminal."""
    forced = os.environ.get("LINEBREAK_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return sys.stderr.isatty()


def bar(iterable=None, *, disable: bool = False, **kwargs):
    """``tqdm(iterable, **kwargs)``, disabled unless :func:`enabled` (and not ``disable``)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=disable or not enabled(), **kwargs)
