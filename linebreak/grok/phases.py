"""The three phases of grokking (Nanda et al. 2023), detected from the logged curves.

Rules (applied to the log records, each with ``step``, ``train_acc``, ``test_acc``, ``train_loss``,
``test_loss``):

* **memorisation** ends at the first step where train accuracy is 100 %;
* **circuit formation** ends (clean-up starts) at the first step after the test-loss peak where the test
  loss has fallen below half of that peak: the model starts to generalise visibly;
* **clean-up** ends at the first later step where the test loss is below ``cleanup_loss`` (default 0.1, i.e.
  the held-out answers get ~90 % probability on average): the memorising parts are gone.

A boundary that the run never reached is ``None``. The *grok step* is the first step with test accuracy
>= 95 %. The thresholds live in :mod:`linebreak.rules.grok`.
"""

from __future__ import annotations

from dataclasses import dataclass

from linebreak.rules.grok import CLEANUP_LOSS, GROK_TEST_ACC


@dataclass
class Phases:
    memorised: int | None  # end of memorisation (train accuracy 100 %)
    circuit: int | None  # end of circuit formation (test loss below half its peak)
    cleanup: int | None  # end of clean-up (test loss below cleanup_loss)
    grok: int | None  # first step with test accuracy >= 0.95
    test_loss_peak_step: int | None

    def spans(self, last_step: int) -> list[tuple[str, int, int]]:
        """(name, start, end) of each phase that started, ending at ``last_step`` if it did not finish."""
        out, start = [], 0
        for name, end in (("memorisation", self.memorised), ("circuit formation", self.circuit),
                          ("clean-up", self.cleanup)):
            out.append((name, start, end if end is not None else last_step))
            if end is None:
                break
            start = end
        return out


def _first(records: list[dict], cond, after: int = -1) -> int | None:
    return next((r["step"] for r in records if r["step"] > after and cond(r)), None)


def detect_phases(records: list[dict], cleanup_loss: float = CLEANUP_LOSS) -> Phases:
    if not records:
        return Phases(None, None, None, None, None)
    memorised = _first(records, lambda r: r["train_acc"] >= 1.0)
    grok = _first(records, lambda r: r["test_acc"] >= GROK_TEST_ACC)
    peak = max(records, key=lambda r: r["test_loss"])
    circuit = cleanup = None
    if memorised is not None:
        half = peak["test_loss"] / 2
        circuit = _first(records, lambda r: r["test_loss"] < half, after=max(memorised, peak["step"]) - 1)
        if circuit is not None:
            cleanup = _first(records, lambda r: r["test_loss"] < cleanup_loss, after=circuit - 1)
    return Phases(memorised, circuit, cleanup, grok, peak["step"])
