"""``linebreak capture``: a model's activations under TransformerLens names, with token labels.

- :mod:`~linebreak.capture.config`: ``CaptureConfig`` (split, documents, token rows, sites, layers).
- :mod:`~linebreak.capture.collect`: the capture pass, on :mod:`linebreak.hooks`.
- :mod:`~linebreak.capture.store`: ``Activations`` and its safetensors folder.
- :mod:`~linebreak.capture.control`: the random-init control model (the one construction).
"""
