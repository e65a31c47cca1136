"""Loading a model folder for analysis, and the checks that a model fits a corpus.

:func:`load_model` is the one place a user's model folder is opened: local files only (offline), weights through
``from_pretrained`` (safetensors when the folder has them), eager attention (the only implementation that returns
attention probabilities), eval mode. The checks refuse, in one line, a model whose tokenizer or vocabulary does
not match the corpus it is asked to read.
"""

from __future__ import annotations

from pathlib import Path

from linebreak.hooks.arch import arch_of
from linebreak.io import UserError


def ensure_eager(model):
    """Attention probabilities exist only with eager attention (SDPA returns none); switch if needed."""
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        model.set_attn_implementation("eager")
    return model


def load_model(model_dir: str | Path):
    """Load a local model folder and its tokenizer: eager attention, eval mode, float32, offline."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise UserError(f"not a model folder (no config.json): {model_dir}")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, attn_implementation="eager", dtype=torch.float32, local_files_only=True)
    except Exception as e:  # corrupt weights/config surface as many exception types
        raise UserError(f"could not load model from {model_dir}: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    except Exception as e:
        raise UserError(f"could not load the tokenizer saved with the model in {model_dir}: "
                        f"{type(e).__name__}") from None
    arch_of(model)
    return ensure_eager(model).eval(), tokenizer


def check_tokenizer_matches(tokenizer, corpus) -> None:
    """Refuse a model whose tokenizer is not the corpus tokenizer (same tokens, same ids)."""
    a, b = tokenizer.get_vocab(), corpus.tokenizer.get_vocab()
    if a != b:
        only_model = len(set(a) - set(b))
        only_corpus = len(set(b) - set(a))
        moved = sum(1 for t in set(a) & set(b) if a[t] != b[t])
        raise UserError(f"the model's tokenizer does not match the corpus tokenizer ({len(a)} vs {len(b)} "
                        f"tokens; {only_model} only in the model, {only_corpus} only in the corpus, "
                        f"{moved} with other ids)")


def check_vocab_fits(model, max_id: int) -> None:
    n = model.get_input_embeddings().num_embeddings
    if max_id >= n:
        raise UserError(f"the corpus uses token id {max_id} but the model has only {n} embeddings")
