"""The one way linebreak runs a model with hooks, under TransformerLens names, and intervenes on it.

- :mod:`~linebreak.hooks.points`: every hook point, declared once (name, shape, whether it can be replaced).
- :mod:`~linebreak.hooks.arch`: where the parts of a Hugging Face model are, one record per family.
- :mod:`~linebreak.hooks.load`: loading a model folder (device, dtype) and the checks that it fits a corpus.
- :mod:`~linebreak.hooks.attach`: a hook function attached at a named point (the "first input" helper).
- :mod:`~linebreak.hooks.run`: ``run_with_hooks``, ``run_with_cache``, the ``hooks`` context manager.
- :mod:`~linebreak.hooks.interventions`: ablate heads, edit keys, edit the residual, residual noise.
- :mod:`~linebreak.hooks.measure`: per-head outputs, the newline / other-token loss split.
"""
