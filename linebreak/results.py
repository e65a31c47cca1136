"""Typed results between stages: dataclasses that write themselves to JSON and read themselves back.

Every stage returns a :class:`Result` subclass; the next stage, the findings, the sweep and the plots read
its attributes, never string keys. On disk a result is plain JSON with a ``format`` field
(``"linebreak-<stage>/<version>"``): :meth:`Result.from_json` rebuilds the nested dataclasses from their type
hints and refuses a file of another format or version in one line (:class:`linebreak.io.UserError`), so an
old file is either read as it is or refused, never misread.

Conversion rules, from the field's type hint: a dataclass field is rebuilt recursively; ``list[X]``,
``tuple[X, ...]`` and ``dict[str, X]`` element-wise; ``np.ndarray`` with ``np.asarray``; ``X | None`` allows
null; ``float`` accepts null (JSON has no NaN: null means "not defined" and reads back as NaN).

Writing: dataclasses become objects in field order; a field marked ``metadata=OMIT`` is left out while it is
None (so a file keeps exactly the keys its stage always wrote), and one marked ``metadata={"json": False}``
(arrays that live in a safetensors file beside the JSON) is never written.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from linebreak.io import UserError, load_json, save_json, to_jsonable

R = TypeVar("R", bound="Result")
OMIT = {"omit_if_none": True}  # field metadata: leave the field out of the JSON while it is None


def plain(x: Any) -> Any:
    """Dataclasses as dicts (field order), leaving out ``OMIT`` fields that are None and ``json=False`` ones."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x) if f.metadata.get("json", True)
                and not (f.metadata.get("omit_if_none") and getattr(x, f.name) is None)}
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [plain(v) for v in x]
    return x


def _nan_for_null(value: Any) -> Any:
    """Nested lists with null (a NaN written to JSON) as NaN again, for an array field."""
    if isinstance(value, list):
        return [_nan_for_null(v) for v in value]
    return np.nan if value is None else value


def _convert(tp: Any, value: Any, where: str) -> Any:
    """``value`` (parsed JSON) as the type ``tp``."""
    if tp is Any or value is None and tp is not float:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _convert(inner[0], value, where) if len(inner) == 1 else value
    if tp is float:
        return float("nan") if value is None else float(value)
    if tp is np.ndarray:
        return np.asarray(_nan_for_null(value))
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, where)
    if origin is list:
        return [_convert(args[0], v, f"{where}[]") for v in value]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[]") for v in value)
        return tuple(_convert(a, v, f"{where}[]") for a, v in zip(args, value))
    if origin is dict:
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return value


def _from_dict(cls: type, data: dict, where: str) -> Any:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected an object for {cls.__name__}, found {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{where}: {cls.__name__} is missing {f.name!r}")
    return cls(**kwargs)


def from_dict(cls: type[R], data: dict, where: str = "result") -> R:
    """A dataclass ``cls`` (any, not only a :class:`Result`) rebuilt from parsed JSON."""
    return _from_dict(cls, data, where)


@dataclasses.dataclass
class Result:
    """Base of every stage result. Subclasses set ``FORMAT = "linebreak-<stage>/<version>"``."""

    FORMAT: ClassVar[str] = ""

    def to_json(self) -> dict:
        """Plain JSON values, with ``format`` first."""
        return {"format": self.FORMAT, **to_jsonable(plain(self))}

    @classmethod
    def from_json(cls: type[R], data: dict, where: str | None = None) -> R:
        where = cls.check_format(data, where)
        return _from_dict(cls, {k: v for k, v in data.items() if k != "format"}, where)

    @classmethod
    def check_format(cls, data: Any, where: str | None = None) -> str:
        """Refuse ``data`` in one line unless it is an object of this class's ``format``; returns ``where``
        (the name errors use, by default the format)."""
        where = where or cls.FORMAT
        found = data.get("format") if isinstance(data, dict) else None
        if found != cls.FORMAT:
            older = " (no format field: an older layout)" if found is None else ""
            raise UserError(f"{where}: format {found!r} is not {cls.FORMAT!r}{older}; rerun the stage that wrote it")
        return where

    def save(self, path: str | Path) -> Path:
        return save_json(path, self.to_json())

    @classmethod
    def load(cls: type[R], path: str | Path) -> R:
        return cls.from_json(load_json(path, what=f"{cls.FORMAT} file"), where=str(path))
