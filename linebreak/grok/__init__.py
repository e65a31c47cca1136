"""The mod-P grokking reference (Nanda et al. 2023): data, model, training, progress measures, phases.

Entry point: :func:`linebreak.grok.train.run_grok` with a :class:`linebreak.grok.config.GrokConfig`
(presets in ``linebreak.modp.config.PRESETS``: ``nanda`` and ``fast``). Nothing heavy is imported here.
"""
