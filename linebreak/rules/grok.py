"""Rules of the grok stage (the mod-P reference, Nanda et al. 2023): phases, neuron clusters, key frequencies.

The analysis (:mod:`linebreak.grok.phases`, :mod:`linebreak.grok.train`) and the findings
(:mod:`linebreak.study.findings.grok`) import them from here.
"""

from __future__ import annotations

from linebreak.rules.anchors import ANCHORS

# the grok step is the first step with test accuracy at least this (Nanda et al. 2023 read grokking off the
# test-accuracy jump; 95 % is past the jump and below the final ~100 %)
GROK_TEST_ACC = 0.95

# clean-up ends when the test loss falls below this: held-out answers get ~90 % probability on average
CLEANUP_LOSS = 0.1

# a neuron belongs to one frequency when that frequency's 2D Fourier block holds this share of its variance
# (Nanda et al. 2023's neuron clusters)
NEURON_SHARE = 0.85

# the embedding should concentrate on this many key frequencies (inclusive; Nanda et al. 2023: 3-6 in W_E)
N_KEY_FREQS: tuple[int, int] = ANCHORS["n_key_freqs"][0]
