"""``linebreak train``: a small transformer trained from scratch to emit the newlines of a wrapped corpus.

``config`` (settings), ``model`` (the architectures), ``loop`` (:func:`linebreak.train.loop.train`),
``metrics`` (newline metrics against the references in ``baselines``), ``checkpoint`` (files, resume) and
``result`` (:class:`linebreak.train.result.TrainMetrics`). Nothing heavy is imported here.
"""
