"""Findings of the model stage: newline prediction against the Bayes and constant references."""

from __future__ import annotations

from linebreak.rules.training import MIN_FORCED_BREAK_ACC, MIN_INFO_CAPTURED
from linebreak.study.findings.common import _f
from linebreak.study.report import Finding
from linebreak.train.result import TrainMetrics


def training_findings(m: TrainMetrics) -> list[Finding]:
    s = "Newline prediction"
    return [
        _f("info_captured", s, f"The model captures {m.info_captured:.3f} of the achievable newline "
           f"information (newline CE {m.newline_ce:.3f} nats vs Bayes-posterior {m.newline_ce_posterior:.3f}"
           f" and constant-rate {m.newline_ce_constant:.3f}); target {MIN_INFO_CAPTURED}.", m.info_captured, None,
           [["info_captured", m.info_captured, ">=", MIN_INFO_CAPTURED]]),
        _f("forced_break_acc", s, f"Where the break is knowable (no word fits under any width consistent with the "
           f"earlier lines) the model breaks the line {100 * m.forced_break_acc_knowable:.1f} % of the time "
           f"({m.knowable_forced_positions} positions); counting also first lines, where the width is not yet "
           f"known, {100 * m.forced_break_acc:.1f} % against a Bayes ceiling of "
           f"{100 * m.forced_break_acc_bayes:.1f} %. Where every word fits it does not break "
           f"{100 * m.no_break_acc:.1f} % of the time; target {100 * MIN_FORCED_BREAK_ACC:g} %.",
           m.forced_break_acc_knowable, None,
           [["forced_break_acc_knowable", m.forced_break_acc_knowable, ">=", MIN_FORCED_BREAK_ACC]]),
    ]
