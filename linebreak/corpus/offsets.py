"""Characters per token from where the tokenizer puts each token in the text (external corpora).

A token's string is not its characters: byte-level BPE (GPT-2, Llama-3, Qwen) writes a space as ``Ġ`` and
splits a non-ASCII character over byte tokens, SentencePiece (Gemma, Llama-2) writes a space as ``▁``, and one
id stands for different characters in context (a lone byte token completes ``é`` after one byte, ``€`` after
two). So the counts of a corpus tokenized by another model's tokenizer (:mod:`linebreak.corpus.external`)
are taken per position, from the text:

- a fast tokenizer's own offsets, untrimmed (its post-processor, which trims the space off ``Ġword``, is
  left out); a character is *completed* by the last token whose span covers it, and one no span covers (a
  space a normaliser dropped) by the next token that covers anything;
- otherwise (or if those offsets are not in order) by decoding prefixes: after token ``t`` the text is
  complete up to ``len(decode(ids[:t + 1]))``, less a trailing U+FFFD (a character still incomplete).

Either way ``done[t]`` is the length of the text's prefix complete after token ``t``, and a token counts the
characters it completes: a character split over several tokens counts once, on the token that completes
it, and the tokens holding its first bytes count 0 (they are not counting rows). A token that carries the
space before a word counts that space. Characters are Unicode code points (external.py NFC-normalises the
text, so an accented letter is one).

Per position (:data:`POSITION_KEYS`, saved beside ``input_ids``): ``chars`` (characters of the line the token
completes; 0 at ``<bos>`` and the newline), ``word_len`` (at the token completing a word's first character,
that word's whole length, however many tokens it spans; else -1), ``word_end`` (the token completes a word's
last character: a break may follow) and ``over_long`` (the token is on a line longer than the width; a
newline: the line it ends). :func:`position_labels` turns them into the usual labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from linebreak.corpus.labels import LABEL_NAMES, next_value, token_labels
from linebreak.io import UserError

POSITION_KEYS = ("chars", "word_len", "word_end", "over_long")
EXTRA_LABELS = ("token_len", "word_end", "over_long")  # beside LABEL_NAMES; token_len = chars
WORD = re.compile(r"[^ \n]+")


class CharCounter:
    """Token ids and ``done`` (above) of a text, with ``tok``'s offsets (``method="offsets"``, fast
    tokenizers), by decoding prefixes (``"decoding"``), or the first that works (``"auto"``)."""

    def __init__(self, tok, method: str = "auto"):
        if method not in ("auto", "offsets", "decoding"):
            raise UserError(f"character counting method {method!r}: choose auto, offsets or decoding")
        self.tok, self.method, self.core = tok, method, None
        if method != "decoding" and getattr(tok, "is_fast", False):
            from tokenizers import Tokenizer

            self.core = Tokenizer.from_str(tok.backend_tokenizer.to_str())
            self.core.post_processor = None  # it would trim spaces out of the offsets
            self.core.no_truncation()
            self.core.no_padding()
        elif method == "offsets":
            raise UserError("this tokenizer gives no offsets (not a fast tokenizer); count by decoding")
        self.used: set[str] = set()

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        ids = self.tok.encode(text, add_special_tokens=False)
        done = None
        if self.core is not None:
            enc = self.core.encode(text, add_special_tokens=False)
            if list(enc.ids) == list(ids):
                done = done_from_offsets(enc.offsets, len(text))
            if done is None and self.method == "offsets":
                raise UserError("the tokenizer's offsets do not follow its tokens in order; count by decoding")
        self.used.add("offsets" if done is not None else "decoding")
        if done is None:
            done = self.done_from_decoding(ids, text)
        return np.asarray(ids, dtype=np.int64), done

    def done_from_decoding(self, ids: list[int], text: str, window: int = 16) -> np.ndarray:
        """``done`` by decoding: each token's characters from a window of the tokens before it (a decode
        does not change what came before; 16 tokens always hold a whole character)."""
        def dec(a: int, b: int) -> int:
            return len(self.tok.decode(ids[a:b], clean_up_tokenization_spaces=False).rstrip("\ufffd"))
        done, total = np.zeros(len(ids), dtype=np.int64), 0
        for t in range(len(ids)):
            s = max(0, t - window)
            total += dec(s, t + 1) - dec(s, t)
            done[t] = total
        if self.tok.decode(ids, clean_up_tokenization_spaces=False) != text or (len(ids) and total != len(text)):
            raise UserError("the tokenizer does not decode its tokens back to the text; characters cannot be "
                            "counted")
        return done


def done_from_offsets(offsets, n_chars: int) -> np.ndarray | None:
    """``done`` from token spans ``[(start, end)]`` over a text of ``n_chars``; ``None`` if out of order."""
    T = len(offsets)
    if T == 0 or n_chars == 0:
        return np.zeros(T, dtype=np.int64)
    se = np.asarray(offsets, dtype=np.int64).reshape(T, 2)
    lens = np.maximum(se[:, 1] - se[:, 0], 0)
    first = np.repeat(se[:, 0] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    owner = np.full(n_chars, -1, dtype=np.int64)
    # the last token covering a character completes it
    np.maximum.at(owner, first + np.arange(lens.sum()), np.repeat(np.arange(T), lens))
    covered = owner >= 0
    # an uncovered character goes to the next token covering one; after the last span, to the last token
    comp = np.minimum.accumulate(np.where(covered, owner, T)[::-1])[::-1]
    comp = np.minimum(comp, T - 1)
    if (comp[covered] != owner[covered]).any():
        return None  # spans not in token order
    return np.searchsorted(comp, np.arange(T), side="right").astype(np.int64)


@dataclass
class Encoded:
    text: str
    ids: np.ndarray  # int64 [T]
    done: np.ndarray  # int64 [T]
    split_newlines: int  # newlines the tokenizer merged with a neighbour, split off (encoded line by line)


def merged_newlines(text: str, ids: np.ndarray, done: np.ndarray, newline_id: int) -> int:
    """How many newlines of ``text`` are not a token of their own (``".\\n"``, ``"\\nThe"``, ``"\\n\\n"``)."""
    prev = np.concatenate([[0], done[:-1]])
    alone = (ids == newline_id) & (done - prev == 1)
    alone_at = set(prev[alone].tolist())
    nl_at = [m.start() for m in re.finditer("\n", text)]
    stray = int(((ids == newline_id) & ~alone).sum())
    return sum(p not in alone_at for p in nl_at) + stray


def encode_lines(counter: CharCounter, lines: list[str], newline_id: int) -> Encoded:
    """The lines joined by newlines, with every newline a token of its own.

    The text is encoded whole; if the tokenizer merged a newline with a neighbour (Llama-3 and Qwen have
    ``".\\n"``; a tokenizer without pre-tokenizer may learn ``"\\nThe"``), each line is encoded on its own and
    the lines are joined by the newline token: the model reads the same characters, the newline apart. A
    tokenizer that reads a line differently on its own (a SentencePiece prefix space) is refused. Empty lines,
    trailing spaces and indents never occur (lines are non-empty words joined by single spaces), so
    ``"\\n\\n"``, ``" \\n"`` and ``"\\n  "`` cannot form.
    """
    text = "\n".join(lines)
    ids, done = counter.encode(text)
    merged = merged_newlines(text, ids, done, newline_id)
    if not merged:
        return Encoded(text, ids, done, 0)
    parts_ids, parts_done, start = [], [], 0
    for i, line in enumerate(lines):
        li, ld = counter.encode(line)
        if i:
            start += 1  # the newline token completes the newline character
            parts_ids.append(np.array([newline_id]))
            parts_done.append(np.array([start]))
        parts_ids.append(li)
        parts_done.append(ld + start)
        start += len(line)
    ids2, done2 = np.concatenate(parts_ids).astype(np.int64), np.concatenate(parts_done).astype(np.int64)
    dec = counter.tok.decode
    if merged_newlines(text, ids2, done2, newline_id) or dec(ids2.tolist()) != dec(ids.tolist()):
        raise UserError("the model's tokenizer merges the newline with other characters and reads a line "
                        "differently on its own; counts would be wrong")
    return Encoded(text, ids2, done2, merged)


def positions(enc: Encoded, width: int) -> dict[str, np.ndarray]:
    """The :data:`POSITION_KEYS` arrays ([T]) of one encoded document wrapped at ``width``."""
    text, done = enc.text, enc.done
    n = len(text)
    prev = np.concatenate([[0], done[:-1]])
    is_nl = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) == ord("\n")
    nl_cs = np.concatenate([[0], np.cumsum(is_nl)])
    chars = (done - prev) - (nl_cs[done] - nl_cs[prev])
    line_of = nl_cs[:-1]  # newlines before each character: a newline belongs to the line it ends
    long_line = np.array([len(line) > width for line in text.split("\n")])
    long_cs = np.concatenate([[0], np.cumsum(long_line[line_of])]) if n else np.zeros(1, np.int64)
    lo, hi = np.minimum(prev, n), np.minimum(np.maximum(done, prev + 1), n)  # a partial character: its line
    spans = [(m.start(), m.end()) for m in WORD.finditer(text)]
    starts = np.array([s for s, _ in spans] + [n], dtype=np.int64)
    lengths = np.array([e - s for s, e in spans] + [-1], dtype=np.int64)
    ends = np.array([e for _, e in spans], dtype=np.int64)
    first = np.searchsorted(starts, prev, side="left")  # the first word starting at or after prev
    word_len = np.where(starts[first] < done, lengths[first], -1)
    word_end = np.searchsorted(ends, done, side="right") > np.searchsorted(ends, prev, side="right")
    return {"chars": chars.astype(np.int64), "word_len": word_len.astype(np.int64), "word_end": word_end,
            "over_long": (long_cs[hi] - long_cs[lo]) > 0}


def position_labels(pos: dict[str, np.ndarray], is_newline: np.ndarray, width: int) -> dict[str, np.ndarray]:
    """:func:`linebreak.corpus.labels.token_labels` of one document from its per-position arrays, with
    ``next_word_len`` the whole length of the next word *starting* after ``t`` (however many tokens it
    spans), plus :data:`EXTRA_LABELS`."""
    chars = np.asarray(pos["chars"], dtype=np.int64)
    lab = token_labels(chars, is_newline, width)
    lab["next_word_len"] = next_value(pos["word_len"])
    lab |= {"token_len": chars, "word_end": np.asarray(pos["word_end"], dtype=bool),
            "over_long": np.asarray(pos["over_long"], dtype=bool)}
    return lab


def labels_for_positions(input_ids: np.ndarray, widths: np.ndarray, pos: dict[str, np.ndarray],
                         newline_id: int) -> dict[str, np.ndarray]:
    """:func:`position_labels` for every document of a split: each label as an array [n_docs, T]."""
    input_ids = np.asarray(input_ids)
    per_doc = [position_labels({k: pos[k][d] for k in POSITION_KEYS}, ids == newline_id, int(w))
               for d, (ids, w) in enumerate(zip(input_ids, np.asarray(widths)))]
    return {name: np.stack([d[name] for d in per_doc]) for name in LABEL_NAMES + EXTRA_LABELS}
