"""Progress bars draw on a terminal and stay out of logs (one line per update would bury a log)."""

import io
import sys

from linebreak import progress


def test_bars_follow_the_terminal_and_the_override(monkeypatch):
    monkeypatch.delenv("LINEBREAK_PROGRESS", raising=False)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file or a pipe
    assert not progress.enabled() and progress.bar(range(3)).disable
    assert list(progress.bar(range(3))) == [0, 1, 2] and sys.stderr.getvalue() == ""
    monkeypatch.setattr(sys, "stderr", Tty())
    assert progress.enabled() and not progress.bar(range(3), file=sys.stderr).disable
    assert progress.bar(range(3), disable=True).disable  # a caller's own switch still wins
    monkeypatch.setenv("LINEBREAK_PROGRESS", "0")
    assert not progress.enabled()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setenv("LINEBREAK_PROGRESS", "1")
    assert progress.enabled()


def test_hugging_face_bars_follow_ours(monkeypatch):
    """With bars off (a log), Hugging Face's own bars (loading weights, writing shards) are switched off too."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    monkeypatch.setenv("LINEBREAK_PROGRESS", "1")
    progress.quiet_libraries()
    import os

    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    monkeypatch.setenv("LINEBREAK_PROGRESS", "0")
    progress.quiet_libraries()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    from transformers.utils import logging as hf_logging

    assert not hf_logging.is_progress_bar_enabled()
    # (bars stay off for the rest of this test process: nothing reads them)
