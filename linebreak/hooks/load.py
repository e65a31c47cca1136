"""Loading a model folder for analysis, placing it on a device, and the checks that a model fits a corpus.

:func:`load_model` is the one place a user's model folder is opened: local files only (offline), weights through
``from_pretrained`` (safetensors when the folder has them), eager attention (the only implementation that returns
attention probabilities), eval mode, in the dtype and on the device asked for (:mod:`linebreak.hooks.device`;
default float32 on the CPU). :func:`place` puts a model built in memory (the random-init control) the same way.
A device that is absent or a dtype it cannot run is refused by :func:`check_device` before anything is loaded
or written. A model trained with the count-code control carries its fixed code in ``config.json``, and
:func:`load_model` attaches it (:func:`linebreak.train.count_code.attach_count_code`), so every stage runs the
model that was trained. The checks refuse, in one line, a model folder without config or weights, and a model
whose tokenizer or vocabulary does not match the corpus it is asked to read.
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


WEIGHTS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json")


def check_device(device: str = "cpu", dtype: str = "float32") -> None:
    """A one-line :class:`UserError` unless ``device`` exists here and runs ``dtype`` (a small matmul, a softmax
    and a layer norm in it: what every forward pass needs)."""
    import torch

    from linebreak.hooks.device import check_names

    check_names(device, dtype)
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here (torch "
                        f"{torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA); "
                        "use --device cpu")
    if device == "cuda" and dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        raise UserError(f"--dtype bfloat16: {torch.cuda.get_device_name()} cannot run bfloat16; use float16 or "
                        "float32")
    try:
        x = torch.ones(2, 4, dtype=getattr(torch, dtype), device=device)
        torch.nn.functional.layer_norm(torch.softmax(x @ x.T, -1), (2,))
    except (RuntimeError, TypeError) as e:
        raise UserError(f"--device {device} cannot run --dtype {dtype} ({str(e).splitlines()[0]})") from None


def place(model, device: str = "cpu", dtype: str = "float32"):
    """``model`` with its floating-point weights in ``dtype``, on ``device``, after :func:`check_device`.

    Only parameters change dtype: buffers stay as the model made them (a rotary model's ``inv_freq`` is float32
    on purpose; ``from_pretrained`` in bfloat16 keeps it so too). A float32 model on the CPU is left as it is."""
    import torch

    check_device(device, dtype)
    want = getattr(torch, dtype)
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point() and p.dtype != want:
                p.data = p.data.to(want)
    return model.to(device)


def model_device(model):
    """The device the model's weights are on (where its inputs must go)."""
    return next(model.parameters()).device


def _first_line(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def check_model_folder(model_dir: str | Path) -> None:
    """A one-line :class:`UserError` unless ``model_dir`` has a ``config.json`` of an architecture linebreak
    reads and weights beside it; reads only the config (cheap, also for a 9B model)."""
    from types import SimpleNamespace

    from transformers import AutoConfig

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise UserError(f"not a model folder (no config.json): {model_dir}")
    try:
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    except Exception as e:
        raise UserError(f"could not read {model_dir / 'config.json'}: {_first_line(e)}") from None
    arch_of(SimpleNamespace(config=config))  # an architecture linebreak cannot read is refused before its weights
    if not any(any(model_dir.glob(w)) for w in WEIGHTS):
        raise UserError(f"no weights in {model_dir} (model.safetensors, a sharded *.safetensors index or "
                        "pytorch_model.bin)")


def load_model(model_dir: str | Path, device: str = "cpu", dtype: str = "float32"):
    """Load a local model folder and its tokenizer: eager attention, eval mode, ``dtype`` on ``device``,
    offline; a count-code control model with its code attached."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from linebreak.train.count_code import attach_count_code

    model_dir = Path(model_dir)
    check_device(device, dtype)
    check_model_folder(model_dir)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, attn_implementation="eager", dtype=getattr(torch, dtype), local_files_only=True)
    except Exception as e:  # corrupt weights/config surface as many exception types
        raise UserError(f"could not load model from {model_dir}: {_first_line(e)}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    except Exception as e:
        raise UserError(f"could not load the tokenizer saved with the model in {model_dir}: "
                        f"{type(e).__name__}") from None
    attach_count_code(model)  # nothing unless config.json holds a count code
    return place(ensure_eager(model), device, dtype).eval(), tokenizer


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
