"""The qk stage (``linebreak qk``): boundary heads and the QK twist test, one module per job.

Read in this order: :mod:`~linebreak.qk.analysis` (the orchestration, short), :mod:`~linebreak.qk.config`,
:mod:`~linebreak.qk.collect` (documents, forward pass, means), :mod:`~linebreak.qk.maps` (every head through
its weights), :mod:`~linebreak.qk.twist` (the pure maths), :mod:`~linebreak.qk.probe_route`,
:mod:`~linebreak.qk.attention` (response curves, key-side test), :mod:`~linebreak.qk.verdict`,
:mod:`~linebreak.qk.top_heads` and :mod:`~linebreak.qk.result` (what the stage hands on). Thresholds:
:mod:`linebreak.rules.qk`.
"""
