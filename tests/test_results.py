"""linebreak.results: typed results write themselves to JSON and read themselves back, or refuse in one line."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from linebreak.io import UserError
from linebreak.results import OMIT, Result, from_dict


@dataclass
class Fit:
    slope: float
    r2: float | None = None
    periods: tuple[int, ...] = ()


@dataclass
class Head:
    name: str
    fit: Fit
    curve: list[float] = field(default_factory=list)


@dataclass
class Demo(Result):
    FORMAT = "linebreak-demo/1"
    heads: list[Head]
    by_layer: dict[str, Fit]
    weights: np.ndarray
    best: str | None = None
    note: dict = field(default_factory=dict)


def demo() -> Demo:
    return Demo(heads=[Head("L1H2", Fit(1.02, 0.9, (3, 6)), [0.5, float("nan"), 2.0]), Head("L0H0", Fit(-0.1))],
                by_layer={"resid_post.1": Fit(float("nan"), None)},
                weights=np.array([[1.0, np.nan], [3.0, 4.0]], dtype=np.float64), best="L1H2",
                note={"free": [1, {"x": None}]})


def test_round_trip_of_nested_dataclasses_lists_dicts_and_arrays(tmp_path):
    d = demo()
    js = d.to_json()
    assert next(iter(js)) == "format" and js["format"] == Demo.FORMAT
    js = json.loads(json.dumps(js, allow_nan=False))  # what a file holds: plain JSON, NaN as null
    assert js["heads"][0]["curve"] == [0.5, None, 2.0] and js["weights"] == [[1.0, None], [3.0, 4.0]]
    back = Demo.from_json(js)
    assert isinstance(back.heads[0], Head) and isinstance(back.heads[0].fit, Fit)
    assert back.heads[0].fit.periods == (3, 6) and isinstance(back.heads[0].fit.periods, tuple)
    assert back.heads[1].fit.r2 is None and back.best == "L1H2"
    assert math.isnan(back.heads[0].curve[1]) and back.heads[0].curve[::2] == [0.5, 2.0]
    assert math.isnan(back.by_layer["resid_post.1"].slope)  # float: null reads back as NaN ...
    assert back.by_layer["resid_post.1"].r2 is None  # ... float | None: null stays None
    assert isinstance(back.weights, np.ndarray) and back.weights.shape == (2, 2)
    np.testing.assert_array_equal(back.weights, d.weights)  # NaN in the same place, every other value exact
    assert back.note == {"free": [1, {"x": None}]}
    assert back.to_json() == Demo.from_json(back.to_json()).to_json() == js
    path = d.save(tmp_path / "demo.json")
    assert Demo.load(path).to_json() == js


def test_integer_arrays_stay_integer():
    @dataclass
    class Ints(Result):
        FORMAT = "linebreak-ints/1"
        values: np.ndarray

    back = Ints.from_json(Ints(np.arange(4)).to_json())
    assert back.values.dtype.kind == "i" and back.values.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("data", [{"heads": []}, {"format": "linebreak-demo/0", "heads": []},
                                  {"format": "linebreak-other/1"}, ["not", "an", "object"]])
def test_wrong_or_missing_format_is_refused_in_one_line(data):
    with pytest.raises(UserError, match="format") as e:
        Demo.from_json(data)
    assert "\n" not in str(e.value) and "rerun" in str(e.value)


def test_a_missing_field_is_refused_in_one_line():
    js = demo().to_json()
    del js["weights"]
    with pytest.raises(UserError, match="missing 'weights'"):
        Demo.from_json(js)
    with pytest.raises(UserError, match="expected an object"):
        from_dict(Fit, [1, 2])


def test_load_of_a_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        Demo.load(tmp_path / "none.json")


@dataclass
class _Sparse(Result):
    FORMAT = "linebreak-test-sparse/1"
    a: int
    note: str | None = field(default=None, metadata=OMIT)
    arrays: dict = field(default_factory=dict, metadata={"json": False})


def test_omitted_fields_are_absent_while_none_and_json_false_fields_never_written():
    """OMIT keeps a file's keys what its stage always wrote; json=False keeps arrays out of the JSON."""
    bare = _Sparse(1, arrays={"w": np.zeros(3)}).to_json()
    assert bare == {"format": "linebreak-test-sparse/1", "a": 1}
    full = _Sparse(1, note="few rows").to_json()
    assert list(full) == ["format", "a", "note"] and full["note"] == "few rows"
    assert _Sparse.from_json(bare) == _Sparse(1) and _Sparse.from_json(full).note == "few rows"
