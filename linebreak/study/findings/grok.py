"""Findings of the grok stage: the mod-P reference."""

from __future__ import annotations

from linebreak.grok.result import GrokResult
from linebreak.rules.grok import GROK_TEST_ACC, N_KEY_FREQS
from linebreak.study.findings.common import _f
from linebreak.study.report import Finding


def grok_findings(g: GrokResult, figs: dict) -> list[Finding]:
    s = "Mod-P Fourier reference"
    cfg = g.config
    keys = g.key_frequencies
    return [
        _f("grok_step", s, f"At P = {cfg.p} ({100 * cfg.frac_train:.0f} % train, lr {cfg.lr}), train "
           f"accuracy reaches 100 % at step {g.memorisation_step} and test accuracy passes "
           f"{100 * GROK_TEST_ACC:g} % at step {g.grok_step} (final test accuracy {100 * g.final_test_acc:.1f} %). "
           "Nanda et al.'s step is for P = 113 at lr 1e-3, so only the order (memorise first, generalise late) "
           "is comparable.",
           g.grok_step, "grok_step",
           [["memorised", g.memorisation_step, ">=", 0], ["grokked later", (g.grok_step or -1)
                                                          - (g.memorisation_step or 0), ">", 0]],
           figs.get("grok")),
        _f("n_key_freqs", s, f"The embedding concentrates on {len(keys)} key frequencies {keys}, found from the "
           "data.", len(keys), "n_key_freqs",
           [["n", len(keys), ">=", N_KEY_FREQS[0]], ["n", len(keys), "<=", N_KEY_FREQS[1]]]),
    ]
