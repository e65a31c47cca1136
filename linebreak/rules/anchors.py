"""Literature anchors: the published numbers each finding is compared with, and where they come from.

These are the papers' numbers, not ours; nothing here is measured. Each entry is ``key: (value, source)``.
"""

from __future__ import annotations

from typing import Any

# Literature anchors: (value, source). These are the papers' numbers, not ours.
ANCHORS: dict[str, tuple[Any, str]] = {
    "count_probe_r2": (0.985, "Gurnee et al. 2025: linear probe for character count after layer 1, Haiku"),
    "top6_pca_share": (0.95, "Gurnee et al. 2025: top 6 PCs of the 150 per-count layer-2 means"),
    "ringing_sign_changes": (2, "Gurnee et al. 2025: similarity rings (positive, negative, positive again)"),
    "qk_max_cos": (1.0, "Gurnee et al. 2025: count probes through W_Q vs width probes through W_K, cos ~ 1"),
    "raw_max_cos": (0.25, "Gurnee et al. 2025: same probes in the raw residual stream, best cos ~ 0.25"),
    "top2_head_output_share": (0.92, "Gurnee et al. 2025: 2 PCs of summed boundary-head outputs"),
    "ablation_newline_ratio": (5.0, "Gurnee et al. 2025 (threshold inferred in shared/research): count-"
                               "subspace ablation hurts newline loss >= 5x more than other tokens"),
    "grok_step": (10000, "Nanda et al. 2023: test accuracy >= 95 % near step 10k (P=113, lr 1e-3)"),
    "n_key_freqs": ((3, 6), "Nanda et al. 2023: 3-6 key frequencies in W_E"),
}
