"""Literature anchors: the published numbers each finding is compared with, and where they come from.

Each entry is ``key: (value, source)``. The value is the paper's number where the paper gives one; where the
paper states a result without a number, the entry says so and gives linebreak's own threshold with its
reason. Nothing here is measured. The report prints these beside each finding (:mod:`linebreak.study.report`)
and lists the full references of :data:`SOURCES` at its end.
"""

from __future__ import annotations

from typing import Any

# The papers the anchors cite, in full.
SOURCES: dict[str, str] = {
    "Gurnee et al. 2025": "W. Gurnee et al., \"When Models Manipulate Manifolds: The Geometry of a Counting "
                          "Task\", Transformer Circuits Thread, 2025 (Claude 3.5 Haiku)",
    "Nanda et al. 2023": "N. Nanda, L. Chan, T. Lieberum, J. Smith, J. Steinhardt, \"Progress measures for "
                         "grokking via mechanistic interpretability\", ICLR 2023",
    "Hindupur et al.": "Hindupur, Orgad, Fel and Ba, \"When Models Don't Manipulate Manifolds\" "
                       "(Qwen2.5-7B)",
}

ANCHORS: dict[str, tuple[Any, str]] = {
    "count_probe_r2": (0.985, "Gurnee et al. 2025: linear probe for character count after layer 1, Haiku"),
    "top6_pca_share": (0.95, "Gurnee et al. 2025: top 6 PCs of the 150 per-count layer-2 means"),
    "ringing_sign_changes": (2, "Gurnee et al. 2025: similarity rings (positive, negative, positive again)"),
    "qk_max_cos": (1.0, "Gurnee et al. 2025: count probes through W_Q vs width probes through W_K, cos ~ 1"),
    "raw_max_cos": (0.25, "Gurnee et al. 2025: same probes in the raw residual stream, best cos ~ 0.25"),
    # The paper gives no ratio: zero-ablating the count subspace "hurts loss only where the next token is a
    # newline". 5x is linebreak's reading of "only": newline loss must rise at least five times as much as the
    # loss on the other tokens. The same threshold decides the finding (linebreak.study.findings.causal).
    "ablation_newline_ratio": (5.0, "linebreak's own threshold: Gurnee et al. 2025 report that ablating the count "
                               "subspace hurts loss only on newlines, without a ratio; linebreak asks newline "
                               "loss to rise >= 5x more than other-token loss"),
    # The second published picture: a comparison by addition. The finding agrees with it when no head twists and
    # the head whose attention moves most is mostly additive (linebreak.rules.qk.ADDITIVE_MIN_SHARE).
    "additive_comparison": ("additive", "Hindupur et al.: Qwen2.5-7B compares numbers through linear directions, "
                            "by adding a query-side and a key-side term, despite curved geometry; Gurnee et al. "
                            "2025 instead find a QK twist in Haiku"),
    "grok_step": (10000, "Nanda et al. 2023: test accuracy >= 95 % near step 10k (P=113, lr 1e-3)"),
    "n_key_freqs": ((3, 6), "Nanda et al. 2023: 3-6 key frequencies in W_E"),
}
