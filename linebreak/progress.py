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


def quiet_libraries() -> None:
    """Keep Hugging Face's own bars (loading weights, writing shards) off where linebreak's are off: set
    ``HF_HUB_DISABLE_PROGRESS_BARS`` (read when ``transformers`` is imported), and switch transformers' bars
    off directly if it is imported already."""
    if enabled():
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def bar(iterable=None, *, disable: bool = False, **kwargs):
    """``tqdm(iterable, **kwargs)``, disabled unless :func:`enabled` (and not ``disable``)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=disable or not enabled(), **kwargs)
