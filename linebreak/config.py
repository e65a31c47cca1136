"""Dataclass configs on the command line: every field of a config becomes a ``--field`` override.

A stage defines a dataclass config and a dict of named presets; :func:`add_config_args` exposes each field
as an option whose default is "use the preset", and :func:`resolve_config` builds the final config
(preset, then the overrides the user gave).

List settings are tuple-typed fields (``tuple[int, ...]``, ``tuple[str, ...]``, ``tuple[float, ...]``), parsed
once, here, at the command-line edge: ``"20,40,60"`` is a list, ``"20:150"`` an inclusive range of integers,
``"a,b"`` a list of names, ``""`` the empty tuple (a list that starts with a minus sign is written
``--patch-deltas=-8,-4,0``, or argparse takes it for an option). A value that does not parse is a one-line
:class:`~linebreak.io.UserError`. A config checks its own values in ``__post_init__`` with :func:`require`
(and accepts list settings written as strings or JSON lists with :func:`tuples_from_text`, so that sweep
configs and old settings records keep working).
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


def tuple_item_type(t: Any) -> type | None:
    """``X`` for a variadic tuple type ``tuple[X, ...]``; None for any other type."""
    args = typing.get_args(t)
    if typing.get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return None


def parse_tuple(text: str, item: type, name: str = "value") -> tuple:
    """``"20,40,60"`` -> (20, 40, 60); ``"20:150"`` -> (20, ..., 150) (integers, inclusive); ``"a,b"`` ->
    ("a", "b"); ``""`` -> (). Anything else is a one-line :class:`UserError` naming ``name``."""
    text = str(text).strip()
    if not text:
        return ()
    try:
        if item is int and ":" in text:
            lo, hi = (int(x) for x in text.split(":"))
            if lo > hi:
                raise UserError(f"{name}: the range {text!r} is empty (lo:hi needs lo <= hi)")
            return tuple(range(lo, hi + 1))
        return tuple(item(p.strip()) for p in text.split(",") if p.strip())
    except ValueError:
        example = {int: "20,40,60 or a range 20:150", float: "0.1,0.5"}.get(item, "a,b")
        raise UserError(f"{name}: expected a comma list like {example}, got {text!r}") from None


def parse_value(t: Any, text: str, name: str = "value") -> Any:
    """The command-line string ``text`` as a value of the config field type ``t``."""
    item = tuple_item_type(t)
    if item is not None:
        return parse_tuple(text, item, name)
    try:
        return {bool: _parse_bool, int: int, float: float}.get(t, str)(text)
    except (ValueError, argparse.ArgumentTypeError) as e:
        raise UserError(f"{name}: {e}") from None


def _parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def _metavar(t: Any) -> str:
    item = tuple_item_type(t)
    if item is not None:
        return {int: "N,N,..|LO:HI", float: "X,X,..."}.get(item, "A,B,...")
    return t.__name__.upper() if isinstance(t, type) else "VALUE"


def add_config_args(parser: argparse.ArgumentParser, cls: type, title: str | None = None) -> None:
    """Add ``--name`` for every field of dataclass ``cls`` (default None = keep the preset's value).

    Scalars are converted by argparse; tuple fields are read as text and parsed by :func:`config_overrides`
    (so that a bad list is one line, not a usage message)."""
    group = parser.add_argument_group(title or f"{cls.__name__} overrides (default: the preset's value)")
    for f in dataclasses.fields(cls):
        t = _field_type(cls, f)
        kind = str if tuple_item_type(t) is not None else {bool: _parse_bool, int: int, float: float}.get(t, str)
        doc = f.metadata.get("help", "")
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"cfg_{f.name}", type=kind, default=None,
                           metavar=_metavar(t), help=doc)


def config_overrides(cls: type, args: argparse.Namespace | None) -> dict[str, Any]:
    """The ``--field`` values the user gave for ``cls`` (tuple fields parsed), as ``{field: value}``."""
    if args is None:
        return {}
    out = {}
    for f in dataclasses.fields(cls):
        v = getattr(args, f"cfg_{f.name}", None)
        if v is None:
            continue
        t = _field_type(cls, f)
        out[f.name] = parse_tuple(v, tuple_item_type(t), f"--{f.name.replace('_', '-')}") \
            if tuple_item_type(t) is not None and isinstance(v, str) else v
    return out


def resolve_config(cls: type[C], presets: dict[str, C], preset: str, args: argparse.Namespace | None) -> C:
    """The named preset with any ``--field`` overrides from ``args`` applied."""
    if preset not in presets:
        raise UserError(f"unknown preset {preset!r}; choose from: {', '.join(presets)}")
    return dataclasses.replace(presets[preset], **config_overrides(cls, args))


# ---- validation, for a config's __post_init__ -------------------------------------------------------------
def require(ok: bool, message: str) -> None:
    """A one-line :class:`UserError` with ``message`` unless ``ok`` (call it in a config's ``__post_init__``)."""
    if not ok:
        raise UserError(message)


def _item(item: type, x: Any, name: str) -> Any:
    """One element of a list setting read from JSON, as ``item`` (no silent rounding of 1.5 to 1)."""
    if isinstance(x, bool) or item is int and isinstance(x, float) or item is not str and not isinstance(
            x, int | float | str):
        raise UserError(f"{name}: expected a list of {item.__name__}, found {x!r} in it")
    try:
        return item(x.strip() if isinstance(x, str) else x)
    except ValueError:
        raise UserError(f"{name}: expected a list of {item.__name__}, found {x!r} in it") from None


def tuples_from_text(cfg: Any) -> None:
    """In ``__post_init__``: turn each tuple-typed field given as text (``"20:150"``, ``"a,b"``) or as a list
    (from JSON) into its tuple, in place (also on a frozen dataclass). Elements are converted to the item type;
    a bad value is a :class:`UserError` naming the field."""
    for f in dataclasses.fields(cfg):
        item = tuple_item_type(_field_type(type(cfg), f))
        v = getattr(cfg, f.name)
        if item is None or isinstance(v, tuple) and all(isinstance(x, item) for x in v):
            continue
        name = f"{type(cfg).__name__}.{f.name}"
        if isinstance(v, str):
            v = parse_tuple(v, item, name)
        elif isinstance(v, list | tuple):
            v = tuple(_item(item, x, name) for x in v)
        else:
            raise UserError(f"{name}: expected a list of {item.__name__}, got {v!r}")
        object.__setattr__(cfg, f.name, v)
