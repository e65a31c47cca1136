"""The random-init control: the one way linebreak builds the untrained model that geometry is measured against.

An untrained transformer already carries a ramp in the character count (position leaks into the residual
stream), so a probe R^2 or a helix means little without the same numbers from a model that never learned.
The control has the analysed model's architecture and random weights:

- a model linebreak trained (its :class:`~linebreak.train.model.ModelConfig` known, e.g. from the model
  folder's ``train_config.json``): :func:`~linebreak.train.model.build_model` with that config, i.e. the very
  initial weights training started from (``init_seed``);
- any other model: ``torch.manual_seed(seed)`` then ``AutoModelForCausalLM.from_config`` of its config, with
  eager attention.

``linebreak capture --control`` and the study both call this, so both measure against the same control.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from linebreak.io import UserError, load_json


def trained_config(model_dir: str | Path):
    """The :class:`~linebreak.train.model.ModelConfig` a linebreak-trained model folder was built from (its
    ``train_config.json``), or ``None`` for a model trained elsewhere."""
    from linebreak.train.model import ModelConfig

    path = Path(model_dir) / "train_config.json"
    if not path.is_file():
        return None
    record = load_json(path, "training config")
    try:
        return ModelConfig(**record["model"])
    except (KeyError, TypeError) as e:
        raise UserError(f"{path} holds no model settings ({type(e).__name__}: {e})") from None


def control_model(model, corpus, model_config=None, seed: int | None = None):
    """A randomly initialised model with ``model``'s architecture, in eval mode (see the module doc).

    ``model_config``: the ModelConfig ``model`` was trained from (then the control is ``build_model`` of it,
    seed ``model_config.init_seed`` unless ``seed`` is given), or ``None`` for another model (then
    ``from_config`` after ``torch.manual_seed(seed or 0)``)."""
    from linebreak.hooks import arch

    if model_config is not None:
        from linebreak.train.model import build_model

        if seed is not None:
            model_config = dataclasses.replace(model_config, init_seed=seed)
        # a count-code control model (issue 19) keeps its fixed code: it is part of the architecture, not trained
        ctrl = build_model(model_config, len(corpus.token_lengths), corpus.bos_id,
                           count_code=getattr(model.config, "linebreak_count_code", None))
        if (arch.layout(ctrl) != arch.layout(model) or ctrl.get_input_embeddings().num_embeddings
                != model.get_input_embeddings().num_embeddings):
            raise UserError("the model's training config does not describe the model (another architecture or "
                            "vocabulary); cannot build its random-init control")
    else:
        import torch
        from transformers import AutoModelForCausalLM

        torch.manual_seed(0 if seed is None else seed)
        ctrl = AutoModelForCausalLM.from_config(model.config, attn_implementation="eager")
    return ctrl.eval()


def save_control_model(model, corpus, path: str | Path, model_config=None, seed: int | None = None) -> Path:
    """:func:`control_model` saved with the corpus tokenizer into ``path`` (a model folder); returns ``path``."""
    path = Path(path)
    ctrl = control_model(model, corpus, model_config, seed)
    ctrl.save_pretrained(str(path))
    corpus.tokenizer.save_pretrained(str(path))
    return path
