"""The command line as a whole: every stage is registered, has --help, and starts fast."""

import subprocess
import sys

import pytest

from linebreak.cli import COMMANDS, build_parser


def test_every_command_is_registered():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help(cli, command):
    rc, out, _ = cli(command, "--help")
    assert rc == 0 and f"usage: linebreak {command}" in out


def test_help_does_not_import_torch():
    code = "import sys; from linebreak.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "linebreak", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("linebreak ")


def test_no_command_prints_help(cli):
    rc, out, _ = cli()
    assert rc == 1 and "COMMAND" in out


# ---- list settings: tuple-typed config fields, parsed once at the command-line edge -----------------------------
def _demo_parser():
    import argparse
    from dataclasses import dataclass, field

    from linebreak.config import add_config_args

    @dataclass(frozen=True)
    class Demo:
        widths: tuple[int, ...] = field(default=(20, 40), metadata={"help": "widths"})
        sites: tuple[str, ...] = ("resid_post",)
        deltas: tuple[float, ...] = ()
        steps: int = 10

    p = argparse.ArgumentParser()
    add_config_args(p, Demo)
    return Demo, p


@pytest.mark.parametrize("argv,want", [
    ([], {"widths": (20, 40), "sites": ("resid_post",), "deltas": (), "steps": 10}),
    (["--widths", "20,40,60"], {"widths": (20, 40, 60)}),
    (["--widths", "20:25"], {"widths": (20, 21, 22, 23, 24, 25)}),  # inclusive range
    (["--widths", " 15 , 30 "], {"widths": (15, 30)}),
    (["--sites", "resid_pre,resid_post"], {"sites": ("resid_pre", "resid_post")}),
    (["--sites", ""], {"sites": ()}),
    (["--deltas=-8,0.5"], {"deltas": (-8.0, 0.5)}),  # a list starting with "-" needs "=" (argparse)
    (["--steps", "3"], {"steps": 3}),
])
def test_tuple_fields_parse_at_the_cli_edge(argv, want):
    import dataclasses

    from linebreak.config import resolve_config

    Demo, p = _demo_parser()
    cfg = resolve_config(Demo, {"default": Demo()}, "default", p.parse_args(argv))
    got = dataclasses.asdict(cfg)
    assert {k: got[k] for k in want} == want
    assert all(isinstance(v, tuple) for k, v in got.items() if k != "steps")


@pytest.mark.parametrize("value,msg", [("20,x", "--widths: expected a comma list"), ("40:20", "is empty"),
                                       ("20:30:40", "expected a comma list"), ("1.5", "expected a comma list")])
def test_a_bad_list_is_a_one_line_user_error(value, msg):
    from linebreak.config import resolve_config
    from linebreak.io import UserError

    Demo, p = _demo_parser()
    with pytest.raises(UserError, match=msg) as e:
        resolve_config(Demo, {"default": Demo()}, "default", p.parse_args(["--widths", value]))
    assert "\n" not in str(e.value)


def test_tuples_from_text_and_require_in_post_init():
    """A config checks itself: list settings given as text or JSON lists become tuples; bad values are refused."""
    from dataclasses import dataclass

    from linebreak.config import require, tuples_from_text
    from linebreak.io import UserError

    @dataclass(frozen=True)
    class Cfg:
        widths: tuple[int, ...] = (20,)
        skip: tuple[str, ...] = ()

        def __post_init__(self):
            tuples_from_text(self)
            require(all(w > 0 for w in self.widths), "widths must be positive")

    assert Cfg("20:22", "qk,grok") == Cfg((20, 21, 22), ("qk", "grok")) == Cfg([20, 21, 22], ["qk", "grok"])
    for bad, msg in ((dict(widths=[20, 1.5]), "Cfg.widths: expected a list of int"),
                     (dict(widths=[True]), "expected a list of int"), (dict(widths="0,5"), "positive"),
                     (dict(skip=3), "Cfg.skip: expected a list of str")):
        with pytest.raises(UserError, match=msg):
            Cfg(**bad)


def test_study_list_settings_on_the_command_line(cli, tmp_path):
    from linebreak.study.pipeline import StudyConfig, resolve

    cfg = StudyConfig(preset="tiny", widths="15:17", skip="grok,causal")
    assert cfg.widths == (15, 16, 17) and cfg.skip == ("grok", "causal")
    assert sorted(str(resolve(cfg).train.data.widths).replace("(", "").replace(")", "").replace(" ", "")
                  .split(",")) == ["15", "16", "17"]
    for argv, msg in ((["--widths", "30:20"], "is empty"), (["--skip", "manifold"], "now called probe"),
                      (["--widths", "a"], "--widths: expected a comma list")):
        rc, _, err = cli("study", "--out", tmp_path / "o", *argv)
        assert rc == 2 and msg in err and err.count("\n") == 1 and "Traceback" not in err
