"""Dataclass configs on the command line: every field of a config becomes a ``--field`` override.

A stage defines a dataclass config and a dict of named presets; :func:`add_config_args` exposes each field
as an option whose default is "use the preset", and :func:`resolve_config` builds the final config
(preset, then the overrides the user gave).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, TypeVar

from linebreak.io import UserError

C = TypeVar("C")


def _field_type(cls: type, f: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(cls)
    t = hints[f.name]
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):  # Optional[X] -> X
        args = [a for a in typing.get_args(t) if a is not type(None)]
        t = args[0]
    return t


def _parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def add_config_args(parser: argparse.ArgumentParser, cls: type, title: str | None = None) -> None:
    """Add ``--name`` for every field of dataclass ``cls`` (default None = keep the preset's value)."""
    group = parser.add_argument_group(title or f"{cls.__name__} overrides (default: the preset's value)")
    for f in dataclasses.fields(cls):
        t = _field_type(cls, f)
        kind = {bool: _parse_bool, int: int, float: float}.get(t, str)
        doc = f.metadata.get("help", "")
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"cfg_{f.name}", type=kind, default=None,
                           metavar=t.__name__.upper() if isinstance(t, type) else "VALUE", help=doc)


def resolve_config(cls: type[C], presets: dict[str, C], preset: str, args: argparse.Namespace | None) -> C:
    """The named preset with any ``--field`` overrides from ``args`` applied."""
    if preset not in presets:
        raise UserError(f"unknown preset {preset!r}; choose from: {', '.join(presets)}")
    cfg = presets[preset]
    if args is None:
        return cfg
    changes = {f.name: getattr(args, f"cfg_{f.name}") for f in dataclasses.fields(cls)
               if getattr(args, f"cfg_{f.name}", None) is not None}
    return dataclasses.replace(cfg, **changes)
