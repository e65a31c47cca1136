"""The former single capture module, kept so that existing imports work (to be removed once callers move).

Its parts now live in :mod:`linebreak.capture.config` (``CaptureConfig``, ``SITES``), :mod:`linebreak.capture.collect`
(``capture``), :mod:`linebreak.capture.store` (``Activations``, ``save_activations``, ``load_activations``,
``MARKER``), :mod:`linebreak.capture.control` (the random-init control) and :mod:`linebreak.hooks.points`
(``hook_name``).
"""

from __future__ import annotations

from linebreak.capture.collect import capture
from linebreak.capture.config import SITES, CaptureConfig
from linebreak.capture.store import MARKER, Activations, load_activations, save_activations
from linebreak.hooks.points import hook_name

__all__ = ["SITES", "MARKER", "CaptureConfig", "Activations", "capture", "save_activations", "load_activations",
           "hook_name"]
