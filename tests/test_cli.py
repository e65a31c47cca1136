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
