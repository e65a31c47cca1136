"""Where a model runs and in what precision: the ``--device`` / ``--dtype`` settings every analysis stage shares.

:class:`OnDevice` is a frozen dataclass with two keyword-only fields, ``device`` (``cpu`` | ``cuda``) and
``dtype`` (``float32`` | ``bfloat16`` | ``float16``: the model's weights and its arithmetic). The stage configs
that run a model (``CaptureConfig``, ``QKConfig``, ``CausalConfig``) and ``StudyConfig`` inherit it, so the
flags come from the same two fields everywhere (:func:`linebreak.config.add_config_args`) and the device and
dtype an analysis ran in are written into its result's settings.

The names are checked here, in ``__post_init__``, without torch: a config read back from JSON on another
machine must still load. Whether the device exists and runs the dtype is checked where a model is placed on it
(:func:`linebreak.hooks.load.check_device`), before anything is written. Whatever the model runs in, the
statistics read float32 on the CPU: :func:`linebreak.hooks.run.run_with_cache` hands activations over as
``.detach().float().cpu()`` (a no-op for a float32 model on the CPU, whose numbers stay bit-identical).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linebreak.config import require

DEVICES = ("cpu", "cuda")
DTYPES = ("float32", "bfloat16", "float16")


def check_names(device: str, dtype: str) -> None:
    """A one-line :class:`~linebreak.io.UserError` unless ``device`` and ``dtype`` are names linebreak knows."""
    require(device in DEVICES, f"device must be {' or '.join(DEVICES)}, got {device!r}")
    require(dtype in DTYPES, f"dtype must be {', '.join(DTYPES[:-1])} or {DTYPES[-1]}, got {dtype!r}")


@dataclass(frozen=True, kw_only=True)
class OnDevice:
    """The model's device and dtype, as two config fields (keyword-only, so they never shift positions)."""
    device: str = field(default="cpu", metadata={"help": f"where the model runs: {' | '.join(DEVICES)}"})
    dtype: str = field(default="float32", metadata={
        "help": f"the model's weights and arithmetic: {' | '.join(DTYPES)} (statistics stay float32)"})

    def __post_init__(self):
        check_names(self.device, self.dtype)
