"""``linebreak grok``: the mod-P grokking reference (Nanda et al. 2023): data, model, training, measures, phases.

Entry point: :func:`linebreak.grok.train.run_grok` with a :class:`linebreak.grok.config.GrokConfig`
(presets in :data:`linebreak.presets.GROK`: ``nanda`` and ``fast``); it returns a
:class:`linebreak.grok.result.GrokRun` whose ``summary`` is the typed :class:`linebreak.grok.result.GrokResult`.
Nothing heavy is imported here.
"""
