"""Re-wrap a user's prose for *another* model's tokenizer, so that any local causal LM can be analysed.

``linebreak generate --text`` builds its own word-level tokenizer. To compare a pretrained model (GPT-2,
Llama, ...) with the models trained here, the same prose must instead be tokenized the way that model reads
it: this module wraps the text greedily at the chosen widths (:func:`linebreak.corpus.wrap.wrap_words`),
tokenizes each document with the model's own tokenizer, and writes a corpus folder of the usual layout, so
labels (:mod:`linebreak.corpus.labels`) and every later stage work unchanged. Characters per token come from
the token strings (byte-level BPE and SentencePiece both map one character to one symbol for ASCII prose).
The newline must be a token of its own: a tokenizer that merges it with other characters is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from linebreak.corpus.store import (
    DOC_SEPARATOR,
    SPLITS,
    CorpusConfig,
    CorpusSplit,
    _fingerprint,
    _read_text_words,
    _refuse_existing,
    _stats,
)
from linebreak.corpus.tokenizer import token_lengths
from linebreak.corpus.wrap import check_fits, parse_widths, wrap_words
from linebreak.io import UserError, save_json, save_tensors, staging_dir, write_text


def load_tokenizer(model_dir: str | Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model_dir))
    except Exception as e:
        raise UserError(f"no usable tokenizer in {model_dir} ({type(e).__name__})") from None


def _special_ids(tok) -> tuple[int, int]:
    nl = tok.encode("a\nb", add_special_tokens=False)
    nl_ids = [i for i in nl if "\n" in tok.decode([i])]
    if len(nl_ids) != 1 or tok.decode([nl_ids[0]]) != "\n":
        raise UserError("the model's tokenizer does not keep the newline as a token of its own")
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if bos is None:
        raise UserError("the model's tokenizer has neither a BOS nor an EOS token to start documents with")
    return int(nl_ids[0]), int(bos)


def _documents(cfg: CorpusConfig, tok, widths: list[int], words: list[str], nl_id: int, bos: int):
    rng = np.random.default_rng([cfg.seed, 3])
    docs, doc_widths, pos = [], [], 0
    while len(docs) < cfg.n_train + cfg.n_val and pos < len(words):
        width = int(rng.choice(widths))
        chunk = words[pos:pos + cfg.seq_len]
        ids = tok.encode("\n".join(wrap_words(chunk, width)), add_special_tokens=False)
        if len(ids) < cfg.seq_len - 1:
            break  # the text ran out; a partial last document is dropped
        ids = ids[: cfg.seq_len - 1]
        used = max(1, len(tok.decode(ids).split()) - 1)  # the last word may be cut
        docs.append([bos] + ids)
        doc_widths.append(width)
        pos += used
    if len(docs) < 2:
        raise UserError(f"text too short: it fills {len(docs)} document(s) of {cfg.seq_len} tokens; need 2")
    ids = np.asarray(docs, dtype=np.int64)
    bad = [i for i in np.unique(ids) if i != nl_id and "\n" in tok.decode([int(i)])]
    if bad:
        raise UserError("the model's tokenizer merges newlines with other characters; counts would be wrong")
    n_val = min(cfg.n_val, max(1, len(docs) // 5))
    w = np.asarray(doc_widths, dtype=np.int64)
    return {"train": CorpusSplit(ids[:-n_val], w[:-n_val]), "validation": CorpusSplit(ids[-n_val:], w[-n_val:])}


def generate_with_tokenizer(cfg: CorpusConfig, model_dir: str | Path, out_dir: str | Path,
                            force: bool = False) -> Path:
    """Wrap ``cfg.text`` at ``cfg.widths`` and tokenize it with ``model_dir``'s tokenizer into ``out_dir``."""
    out_dir = Path(out_dir)
    if not cfg.text:
        raise UserError("a text file is needed to analyse an external model (--text FILE)")
    _refuse_existing(out_dir, force)
    widths = parse_widths(cfg.widths)
    words = _read_text_words(cfg.text)
    check_fits(max(words, key=len), min(widths))
    tok = load_tokenizer(model_dir)
    nl_id, bos = _special_ids(tok)
    splits = _documents(cfg, tok, widths, words, nl_id, bos)
    lengths = token_lengths(tok)
    hist = np.bincount([len(w) for w in words])
    meta = {
        "format": "linebreak-corpus/1", "config": asdict(cfg), "tokenizer_of": str(model_dir),
        "text_sha256": hashlib.sha256(Path(cfg.text).read_bytes()).hexdigest(), "widths": widths,
        "word_length_probs": (hist / hist.sum()).tolist(), "n_word_types": len(set(words)),
        "vocab_size": len(lengths), "seq_len": cfg.seq_len, "bos_id": bos, "newline_id": nl_id,
    }
    meta["stats"] = {name: _stats(s, lengths, nl_id) for name, s in splits.items()}
    meta["fingerprint"] = _fingerprint(splits, meta)
    with staging_dir(out_dir) as tmp:
        tok.save_pretrained(str(tmp))
        for name in SPLITS:
            s = splits[name]
            save_tensors(tmp / f"{name}.safetensors", {"input_ids": s.input_ids, "width": s.width})
            write_text(tmp / f"{name}.txt", DOC_SEPARATOR.join(tok.batch_decode(s.input_ids[:, 1:].tolist())) + "\n")
        save_json(tmp / "metadata.json", meta)
    return out_dir
