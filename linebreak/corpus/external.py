"""Re-wrap a user's prose for *another* model's tokenizer, so that any local causal LM can be analysed.

``linebreak generate --text`` builds its own word-level tokenizer. To compare a pretrained model (GPT-2,
Llama, Gemma, Qwen, Pythia, ...) with the models trained here, the same prose must instead be tokenized the
way that model reads it: this module NFC-normalises the text's words, wraps them greedily at the chosen widths
(:func:`linebreak.corpus.wrap.wrap_words`), tokenizes each document with the model's own tokenizer, and
writes a corpus folder of the usual layout.

Characters are counted per position from the tokenizer's own offsets (:mod:`linebreak.corpus.offsets`), not
from token strings: each split's safetensors holds, beside ``input_ids`` and ``width``, the arrays
``chars``, ``word_len``, ``word_end`` and ``over_long`` (:data:`linebreak.corpus.offsets.POSITION_KEYS`);
:meth:`linebreak.corpus.store.Corpus.labels` builds the labels from them.

- **Newlines** are always a token of their own: documents have no empty lines, trailing spaces or indents, so
  ``"\\n\\n"``, ``" \\n"``, ``"\\n  "`` cannot form, and a document whose tokenizer merged a newline with its
  neighbours (``".\\n"`` in Llama-3 and Qwen) is encoded line by line and joined with the newline token
  (``metadata.json`` ``external.newlines_split`` counts them).
- **Words longer than the line** (URLs, table rules, code) stand alone on a line (``long_words="alone"``, the
  default here); their tokens are marked ``over_long``, left out of the word-length histogram, and counted in
  the statistics (``over_long_words``, ``over_long_tokens``). ``long_words="refuse"`` refuses the text instead.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import replace
from pathlib import Path

import numpy as np

from linebreak.corpus.offsets import (
    POSITION_KEYS,
    WORD,
    CharCounter,
    encode_lines,
    labels_for_positions,
    positions,
)
from linebreak.corpus.store import (
    SPLITS,
    CorpusConfig,
    CorpusSplit,
    corpus_meta,
    refuse_existing,
    split_documents,
    write_corpus,
)
from linebreak.corpus.tokenizer import token_lengths
from linebreak.corpus.words import read_text_words
from linebreak.corpus.wrap import LONG_WORDS, check_fits, wrap_words
from linebreak.io import UserError


def load_tokenizer(model_dir: str | Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model_dir))
    except Exception as e:
        raise UserError(f"no usable tokenizer in {model_dir} ({type(e).__name__})") from None


def _special_ids(tok) -> tuple[int, int]:
    nl = None
    for probe in ("a\nb", "\n", "a\n"):
        nl = next((i for i in tok.encode(probe, add_special_tokens=False) if tok.decode([i]) == "\n"), None)
        if nl is not None:
            break
    if nl is None:
        raise UserError("the model's tokenizer does not keep the newline as a token of its own")
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if bos is None:
        raise UserError("the model's tokenizer has neither a BOS nor an EOS token to start documents with")
    return int(nl), int(bos)


def check_tokenizer(model_dir: str | Path) -> None:
    """A one-line :class:`UserError` unless ``model_dir``'s tokenizer loads and has a newline token of its own
    and a BOS or EOS token (what :func:`generate_with_tokenizer` needs; checked before a study writes)."""
    _special_ids(load_tokenizer(model_dir))


def _first_row(pos: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """``<bos>`` followed by the first ``n`` positions."""
    start = {"chars": 0, "word_len": -1, "word_end": False, "over_long": False}
    return {k: np.concatenate([np.array([start[k]], dtype=pos[k].dtype), pos[k][:n]]) for k in POSITION_KEYS}


def _documents(cfg: CorpusConfig, counter: CharCounter, widths: list[int], words: list[str], nl_id: int,
               bos: int, long_words: str):
    rng = np.random.default_rng([cfg.seed, 3])
    docs, doc_widths, rows, split_nl, pos = [], [], [], 0, 0
    n = cfg.seq_len - 1
    while len(docs) < cfg.n_train + cfg.n_val and pos < len(words):
        width = int(rng.choice(widths))
        enc = encode_lines(counter, wrap_words(words[pos:pos + cfg.seq_len], width, long_words), nl_id)
        if len(enc.ids) < n:
            break  # the text ran out; a partial last document is dropped
        ends = np.array([m.end() for m in WORD.finditer(enc.text)])
        used = int(np.searchsorted(ends, enc.done[n - 1], side="right"))  # words complete in the document
        docs.append(np.concatenate([[bos], enc.ids[:n]]))
        doc_widths.append(width)
        rows.append(_first_row(positions(enc, width), n))
        split_nl += enc.split_newlines
        pos += max(1, used)
    if len(docs) < 2:
        raise UserError(f"text too short for widths {min(widths)}-{max(widths)}: its {len(words)} words fill "
                        f"{len(docs)} document(s) of {cfg.seq_len} tokens with this tokenizer; need 2 (one to train "
                        "on, one to validate)")
    splits = split_documents(docs, doc_widths, cfg)
    n_train = len(splits["train"].width)
    pos_of = {"train": rows[:n_train], "validation": rows[n_train:]}
    return splits, {s: {k: np.stack([r[k] for r in pos_of[s]]) for k in POSITION_KEYS} for s in SPLITS}, split_nl


def _stats(split: CorpusSplit, pos: dict[str, np.ndarray], newline_id: int) -> dict:
    """The usual per-split statistics, from the per-position counts, with the over-long words counted apart."""
    lab = labels_for_positions(split.input_ids, split.width, pos, newline_id)
    lines = lab["line_index"][:, -1] + 1
    starts = pos["word_len"] >= 0
    long_word = starts & (pos["word_len"] > split.width[:, None])
    word_len = pos["word_len"][starts & ~long_word]
    ws = np.unique(split.width)
    return {
        "documents": len(split.width),
        "tokens": int(split.input_ids.size),
        "newlines": int(lab["is_newline"].sum()),
        "documents_per_width": {int(w): int((split.width == w).sum()) for w in ws},
        "lines_per_width": {int(w): int(lines[split.width == w].sum()) for w in ws},
        "word_length_histogram": {int(k): int(v) for k, v in enumerate(np.bincount(word_len)) if v},
        "over_long_words": int(long_word.sum()),
        "over_long_tokens": int(pos["over_long"].sum()),
    }


def _fingerprint(base: str, pos: dict) -> str:
    """The token data's fingerprint with the per-position counts mixed in (a change in counting shows)."""
    h = hashlib.sha256(base.encode())
    for name in SPLITS:
        for k in POSITION_KEYS:
            h.update(np.ascontiguousarray(pos[name][k]).tobytes())
    return h.hexdigest()[:16]


def generate_with_tokenizer(cfg: CorpusConfig, model_dir: str | Path, out_dir: str | Path, force: bool = False,
                            long_words: str = "alone", count_method: str = "auto") -> Path:
    """Wrap ``cfg.text`` at ``cfg.widths`` and tokenize it with ``model_dir``'s tokenizer into ``out_dir``.

    ``long_words``: ``"alone"`` (a word longer than the line stands on its own line, marked) or ``"refuse"``;
    ``count_method``: ``"auto"``, ``"offsets"`` or ``"decoding"`` (:class:`linebreak.corpus.offsets.CharCounter`).
    """
    out_dir = Path(out_dir)
    if not cfg.text:
        raise UserError("a text file is needed to analyse an external model (--text FILE)")
    if long_words not in LONG_WORDS:
        raise UserError(f"long_words {long_words!r}: choose {' or '.join(LONG_WORDS)}")
    refuse_existing(out_dir, force)
    widths = sorted(set(cfg.widths))
    words = [unicodedata.normalize("NFC", w) for w in read_text_words(cfg.text)]
    if long_words == "refuse":
        check_fits(max(words, key=len), min(widths))
    tok = load_tokenizer(model_dir)
    nl_id, bos = _special_ids(tok)
    counter = CharCounter(tok, count_method)
    splits, pos, split_nl = _documents(cfg, counter, widths, words, nl_id, bos, long_words)
    hist = np.bincount([len(w) for w in words])
    meta = corpus_meta(cfg, splits, widths, (hist / hist.sum()).tolist(), len(set(words)), token_lengths(tok),
                       bos, nl_id, tokenizer_of=str(model_dir))
    fingerprint = meta.pop("fingerprint")
    del meta["stats"]  # per-id token lengths: replaced by the per-position statistics
    meta["external"] = {"char_counts": "+".join(sorted(counter.used)), "long_words": long_words,
                        "newlines_split": split_nl}
    meta["stats"] = {name: _stats(s, pos[name], nl_id) for name, s in splits.items()}
    meta["fingerprint"] = _fingerprint(fingerprint, pos)
    return write_corpus(out_dir, tok, {n: replace(s, positions=pos[n]) for n, s in splits.items()}, meta)
