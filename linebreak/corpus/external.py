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

from pathlib import Path

import numpy as np

from linebreak.corpus.store import (
    CorpusConfig,
    CorpusSplit,
    corpus_meta,
    read_text_words,
    refuse_existing,
    split_documents,
    write_corpus,
)
from linebreak.corpus.tokenizer import token_lengths
from linebreak.corpus.wrap import check_fits, wrap_words
from linebreak.io import UserError


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


def _documents(cfg: CorpusConfig, tok, widths: list[int], words: list[str], nl_id: int,
               bos: int) -> dict[str, CorpusSplit]:
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
    splits = split_documents(docs, doc_widths, cfg)
    used_ids = np.unique(np.concatenate([s.input_ids.ravel() for s in splits.values()]))
    if any(i != nl_id and "\n" in tok.decode([int(i)]) for i in used_ids):
        raise UserError("the model's tokenizer merges newlines with other characters; counts would be wrong")
    return splits


def generate_with_tokenizer(cfg: CorpusConfig, model_dir: str | Path, out_dir: str | Path,
                            force: bool = False) -> Path:
    """Wrap ``cfg.text`` at ``cfg.widths`` and tokenize it with ``model_dir``'s tokenizer into ``out_dir``."""
    out_dir = Path(out_dir)
    if not cfg.text:
        raise UserError("a text file is needed to analyse an external model (--text FILE)")
    refuse_existing(out_dir, force)
    widths = sorted(set(cfg.widths))
    words = read_text_words(cfg.text)
    check_fits(max(words, key=len), min(widths))
    tok = load_tokenizer(model_dir)
    nl_id, bos = _special_ids(tok)
    splits = _documents(cfg, tok, widths, words, nl_id, bos)
    hist = np.bincount([len(w) for w in words])
    meta = corpus_meta(cfg, splits, widths, (hist / hist.sum()).tolist(), len(set(words)), token_lengths(tok),
                       bos, nl_id, tokenizer_of=str(model_dir))
    return write_corpus(out_dir, tok, splits, meta)
