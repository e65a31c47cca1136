"""``linebreak causal``: ablations, key resampling, count patching and an insertion sweep.

- :mod:`~linebreak.causal.config`: ``CausalConfig``.
- :mod:`~linebreak.causal.loss`: the newline / other-token loss under hooks, and a condition against the baseline.
- :mod:`~linebreak.causal.ablation`: head ablations and the count-subspace ablation.
- :mod:`~linebreak.causal.keys`: key ablation (mean, resampled, resampled within a line length).
- :mod:`~linebreak.causal.patching`: per-count means and effects, count patching.
- :mod:`~linebreak.causal.insertion`: the insertion sweep.
- :mod:`~linebreak.causal.result`: ``CausalResult`` (``causal.json``).
- :mod:`~linebreak.causal.analysis`: ``causal_checks``, which runs them all.
"""
