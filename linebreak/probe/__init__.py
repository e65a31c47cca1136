"""``linebreak probe``: linear probes and the geometry of the character-count manifold, per captured layer.

- :mod:`~linebreak.probe.config`: ``ProbeConfig`` (sites, tokens per count, ridge penalty, held-out share).
- :mod:`~linebreak.probe.estimators`: ridge probes and per-value logistic probes, held out by document.
- :mod:`~linebreak.probe.manifold`: centroids, PCA, cosine ringing, Fourier spectrum, helix fit, UMAP.
- :mod:`~linebreak.probe.layers`: the per-layer analysis (``analyse``), the command (``probe_folder``), the table.
- :mod:`~linebreak.probe.result`: ``ProbeResult``, written as ``probe.json`` + ``probes.safetensors``.
"""
