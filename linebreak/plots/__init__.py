"""Figures for every stage: PNG through matplotlib (Agg), rotating HTML through plotly (embedded, offline).

- :mod:`~linebreak.plots.common`: atomic PNG / HTML saving.
- :mod:`~linebreak.plots.layers`: the probe stage's figures per layer and across layers (``linebreak plot``).
- :mod:`~linebreak.plots.helix`, :mod:`~linebreak.plots.heatmaps`, :mod:`~linebreak.plots.curves`: their parts.
- :mod:`~linebreak.plots.qk`: the QK stage; :mod:`~linebreak.plots.modp`: the mod-P grokking reference.
"""
