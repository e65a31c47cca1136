"""Build a wrapped-text corpus folder and load it back (``linebreak generate``).

A corpus is a folder (layout in docs/architecture.md): ``metadata.json`` (settings and statistics), the
tokenizer, ``{train,validation}.safetensors`` holding ``input_ids [n_docs, seq_len]`` and ``width [n_docs]``,
and the decoded documents as text. Each document is ``<bos>`` followed by words wrapped greedily at one
width drawn uniformly from the chosen widths (or, with ``fill``, filled to that width: see
:mod:`linebreak.corpus.wrap`), cut to exactly ``seq_len`` tokens; the width is never written in the text.
Synthetic words are sampled independently from :mod:`linebreak.corpus.words`; with ``text`` set, a user's
file is split into words (its newlines dropped) and re-wrapped in consecutive chunks; a word of the text
longer than the narrowest width (a URL, a table rule) stands alone on its own line (``long_words="alone"``, as
real wrappers do) or refuses the text (``"refuse"``). A corpus with such words records ``long_words`` in its
settings, labels their lines ``over_long`` (:func:`linebreak.corpus.labels.over_long_lines`) and counts them
(``over_long_words``, ``over_long_tokens`` per split); synthetic words longer than the line always refuse.
With ``layout="table"`` a share ``table_fraction`` of the documents are column-aligned tables instead
(:mod:`linebreak.corpus.tables`): the tokenizer then has pad tokens, each split also holds the documents'
column starts (``col_starts [n_docs, max_cols]``, -1 beyond a document's columns and in prose documents) and
``shifted [n_docs]``, and ``metadata.json`` gains ``table`` (the pad ids and what the table labels mean).
A prose corpus's settings record leaves the table settings out, and a corpus without over-long words leaves
``long_words`` out, so their files are what they were before tables and over-long words existed. Same
settings, same bytes.

Every corpus folder, whoever tokenizes it (:mod:`linebreak.corpus.external`), is made with the public steps
:func:`refuse_existing`, :func:`split_documents`, :func:`corpus_meta`, :func:`write_corpus`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from linebreak.config import require, tuples_from_text
from linebreak.corpus import tables
from linebreak.corpus.labels import TABLE_LABEL_NAMES, labels_for_split
from linebreak.corpus.offsets import POSITION_KEYS, labels_for_positions
from linebreak.corpus.tokenizer import (
    BOS_ID,
    FIRST_WORD_ID,
    MIN_PAD,
    NEWLINE_ID,
    build_tokenizer,
    first_pad_id,
    pad_mask,
    token_lengths,
)
from linebreak.corpus.words import WordVocab, read_text_words, sample_word_ids, synthetic_vocab, text_vocab
from linebreak.corpus.wrap import LONG_WORDS, WrapError, check_fits, wrap_ids
from linebreak.io import UserError, load_json, load_tensors, save_json, save_tensors, staging_dir, write_text

FORMAT = "linebreak-corpus/1"
SPLITS = ("train", "validation")
DOC_SEPARATOR = "\n\f\n"  # between documents in the split's .txt file
LAYOUTS = ("prose", "table")
TABLE_FIELDS = ("table_fraction", "table_cols", "col_gap", "cell_words", "empty_cells", "overflow")  # with layout
LAYOUT_KEYS = ("col_starts", "shifted")  # a table corpus's per-document arrays beside input_ids
TABLE_LABEL_MEANINGS = {
    "is_pad": "the token is a pad (a run of k >= 2 spaces, character length k)",
    "next_is_pad": "the next token is a pad: where a pad decision is scored",
    "col_index": "the column the token's first character lies in (-1: <bos>, newline, prose document)",
    "cell_index": "the pads before the token on its row: the ordinal of the cell it is in (a pad: the cell it "
                  "closes), counting only written cells; equals col_index unless a cell of the row was left empty or "
                  "overflowed",
    "next_col": "the first column start at least min_pad characters past the token's count (-1: past the last "
                "column); before a pad that skips no empty cell, the pad's length is next_col - count",
    "cell_start": "the token is the first word of a cell (first of its row or after a pad; at a column start)",
    "pad_determined": "a pad on a row >= 1 of a document without empty cells: its length follows from the "
                      "count and the layout, which row 0 shows in full (overflowing cells included)",
    "line_index": "the row (0 = the first, where the layout is still a draw)",
    "width": "a table document's width: the sum of its column widths",
}


@dataclass(frozen=True)
class CorpusConfig:
    widths: tuple[int, ...] = field(default=tuple(range(20, 81)), metadata={
        "help": "wrap widths: a list 20,40,60 or a range 20:150"})
    seq_len: int = field(default=256, metadata={"help": "tokens per document, <bos> included"})
    n_train: int = field(default=24000, metadata={"help": "training documents (at most, with --text)"})
    n_val: int = field(default=256, metadata={"help": "validation documents (at most, with --text)"})
    vocab_size: int = field(default=500, metadata={"help": "synthetic word types"})
    min_word_len: int = 1
    max_word_len: int = 12
    zipf: float = field(default=0.8, metadata={"help": "Zipf exponent of word frequencies"})
    length_bias: float = field(default=0.0, metadata={
        "help": "per-document word-length tilt: p(w) * exp(b * len(w)), b ~ U[-bias, bias]; 0 = off"})
    fill: bool = field(default=False, metadata={
        "help": "fill each line to the width: a word that does not fit is preceded by one of exactly the "
                "characters left, if there is one (synthetic words only)"})
    seed: int = 0
    text: str = field(default="", metadata={"help": "re-wrap this UTF-8 text file (not synthetic words)"})
    layout: str = field(default="prose", metadata={
        "help": "prose (wrapped text) | table (column-aligned rows with pad tokens; linebreak.corpus.tables)"})
    table_fraction: float = field(default=1.0, metadata={
        "help": "layout table: the share of documents that are tables (the rest wrapped prose)"})
    table_cols: tuple[int, ...] = field(default=(3, 4, 5, 6), metadata={
        "help": "layout table: columns per document, drawn uniformly (a list or a range lo:hi)"})
    col_gap: tuple[int, ...] = field(default=tuple(range(10, 17)), metadata={
        "help": "layout table: each column's width, start to start, drawn uniformly: the match width"})
    cell_words: int = field(default=2, metadata={"help": "layout table: words per cell, drawn from 1..this"})
    empty_cells: float = field(default=0.0, metadata={
        "help": "layout table: share of table documents whose every row after the first leaves a different "
                "interior cell (or none) empty than the row above, so the k-th cell of the row above is not "
                "the same column"})
    overflow: float = field(default=0.0, metadata={
        "help": "layout table: chance that a cell of a row after the first runs past its column's end, its pad "
                "on to the next column but one (tab stops), so no pad is its column's width less its cell; "
                "not with empty_cells"})
    long_words: str = field(default="alone", metadata={
        "help": "--text: a word longer than the line (a URL, a table rule): alone (on a line of its own, "
                "labelled over_long, counted in metadata.json) | refuse (a one-line error). Synthetic words "
                "always refuse: there a word longer than the line is a bug of the settings"})

    def __post_init__(self):
        tuples_from_text(self)  # "20:150" or "20,40,60" from code, sweep configs and old records
        require(bool(self.widths), "widths: none given (a list 20,40,60 or a range lo:hi with lo <= hi)")
        require(min(self.widths) > 0, f"widths must be positive, got {min(self.widths)}")
        require(self.layout in LAYOUTS, f"layout {self.layout!r}: choose {' or '.join(LAYOUTS)}")
        require(0 <= self.table_fraction <= 1, f"table_fraction must be within [0, 1], got {self.table_fraction}")
        require(0 <= self.empty_cells <= 1, f"empty_cells must be within [0, 1], got {self.empty_cells}")
        require(bool(self.table_cols) and bool(self.col_gap), "table_cols and col_gap: give at least one value")
        require(0 <= self.overflow <= 1, f"overflow must be within [0, 1], got {self.overflow}")
        require(not (self.overflow > 0 and self.empty_cells > 0), "overflow and empty_cells: choose one")
        skips = "empty_cells" if self.empty_cells > 0 else "overflow" if self.overflow > 0 else ""
        least = 3 if skips else 2  # an empty cell is an interior one; an overflowing cell runs on into a third
        require(min(self.table_cols) >= least, f"table_cols must be >= {least}"
                f"{' with ' + skips if skips else ''}, got {min(self.table_cols)}")
        require(self.cell_words >= 1, f"cell_words must be positive, got {self.cell_words}")
        require(self.long_words in LONG_WORDS, f"long_words {self.long_words!r}: choose {' or '.join(LONG_WORDS)}")


def config_record(cfg: CorpusConfig, over_long: bool = False) -> dict:
    """The settings as ``metadata.json`` records them: a prose corpus leaves the table settings out, and one
    without words longer than the line (``over_long`` False: :func:`has_over_long`) leaves ``long_words`` out."""
    record = asdict(cfg)
    if cfg.layout == "prose":
        for name in ("layout", *TABLE_FIELDS):
            del record[name]
    if not over_long:
        del record["long_words"]
    return record


def has_over_long(cfg: CorpusConfig, vocab: WordVocab, widths: list[int]) -> bool:
    """Does the text have a word longer than the narrowest width? With ``long_words="refuse"`` that is a
    one-line :class:`WrapError`; synthetic words: False (:func:`build_corpus` refuses such settings)."""
    if not cfg.text:
        return False
    longest = max(vocab.words, key=len)
    if len(longest) <= min(widths):
        return False
    if cfg.long_words == "refuse":
        try:
            check_fits(longest, min(widths))
        except WrapError as e:
            raise WrapError(f"{e}; --long-words alone puts such a word on a line of its own") from None
    return True


@dataclass
class CorpusSplit:
    input_ids: np.ndarray  # int64 [n_docs, seq_len]
    width: np.ndarray  # int64 [n_docs]
    positions: dict[str, np.ndarray] | None = None  # external corpora: per-position counts (corpus.offsets)
    layout: dict[str, np.ndarray] | None = None  # table corpora: LAYOUT_KEYS (corpus.tables)


@dataclass
class Corpus:
    path: Path
    meta: dict
    tokenizer: object  # PreTrainedTokenizerFast
    splits: dict[str, CorpusSplit]
    token_lengths: np.ndarray  # [vocab] characters per token id (<bos> 0)
    newline_id: int
    bos_id: int
    pad_by_id: np.ndarray | None = None  # [vocab] bool: pad tokens (table corpora)

    def labels(self, split: str, n_docs: int | None = None) -> dict[str, np.ndarray]:
        """The labels of the first ``n_docs`` documents (all by default) of ``split`` (with ``over_long`` where
        the corpus has words longer than the line)."""
        s = self.splits[split]
        if s.positions is not None:
            pos = {k: v[:n_docs] for k, v in s.positions.items()}
            return labels_for_positions(s.input_ids[:n_docs], s.width[:n_docs], pos, self.newline_id)
        layout = None if s.layout is None else {k: v[:n_docs] for k, v in s.layout.items()}
        return labels_for_split(s.input_ids[:n_docs], s.width[:n_docs], self.token_lengths, self.newline_id,
                                layout, self.pad_by_id, self.over_long)

    @property
    def over_long(self) -> bool:
        """Did words longer than the line stand alone on their lines (a word-level corpus of such a text,
        which records ``long_words``)? Its labels then carry ``over_long``. External corpora: per position."""
        return "long_words" in self.meta.get("config", {})

    @property
    def table(self) -> dict | None:
        """``metadata.json``'s ``table`` record (pad ids, the generator's settings), None for prose."""
        return self.meta.get("table")

    @property
    def widths(self) -> list[int]:
        return list(self.meta["widths"])

    @property
    def word_length_probs(self) -> np.ndarray:
        return np.asarray(self.meta["word_length_probs"], dtype=float)

    @property
    def fill(self) -> bool:
        """Were lines filled to the width (``CorpusConfig.fill``)? Older corpora: no."""
        return bool(self.meta.get("config", {}).get("fill", False))

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]


def _check(cfg: CorpusConfig) -> list[int]:
    widths = sorted(set(cfg.widths))
    for name in ("seq_len", "n_train", "n_val", "vocab_size", "min_word_len"):
        if getattr(cfg, name) < (2 if name == "seq_len" else 1):
            raise UserError(f"{name} must be positive, got {getattr(cfg, name)}")
    if cfg.max_word_len < cfg.min_word_len:
        raise UserError(f"max_word_len {cfg.max_word_len} < min_word_len {cfg.min_word_len}")
    if cfg.zipf < 0 or cfg.length_bias < 0:
        raise UserError("zipf and length_bias must be >= 0")
    if cfg.fill and cfg.text:
        raise UserError("fill works with synthetic words only, not with --text")
    spellings = sum(26**n for n in range(cfg.min_word_len, cfg.max_word_len + 1))
    if not cfg.text and cfg.vocab_size > spellings:
        raise UserError(f"vocab_size {cfg.vocab_size}: only {spellings} distinct words have "
                        f"{cfg.min_word_len}..{cfg.max_word_len} letters; give a smaller --vocab-size")
    if cfg.layout == "table":
        if cfg.text:
            raise UserError("layout table works with synthetic words only, not with --text")
        if min(cfg.col_gap) < cfg.max_word_len + MIN_PAD:
            raise UserError(f"col_gap {min(cfg.col_gap)} is too narrow for words of {cfg.max_word_len} characters "
                            f"and a pad of {MIN_PAD}: give --col-gap >= {cfg.max_word_len + MIN_PAD} or a "
                            f"smaller --max-word-len")
    return widths


def _synthetic_split(cfg, vocab, widths, n_docs, split_index):
    rng = np.random.default_rng([cfg.seed, 2, split_index])
    ids = np.empty((n_docs, cfg.seq_len), dtype=np.int64)
    ids[:, 0] = BOS_ID
    doc_widths = rng.choice(widths, size=n_docs)
    lengths = vocab.lengths
    filler = _filler(vocab, rng) if cfg.fill else None
    for d in range(n_docs):
        ids[d, 1:] = _prose_document(cfg, vocab, lengths, int(doc_widths[d]), rng, filler)
    return CorpusSplit(ids, doc_widths.astype(np.int64))


def _prose_document(cfg, vocab, lengths, width, rng, filler):
    words = sample_word_ids(vocab, cfg.seq_len, rng, cfg.length_bias)
    n = len(vocab.words)
    return wrap_ids(words, lengths, width, cfg.seq_len - 1, FIRST_WORD_ID, FIRST_WORD_ID + n, NEWLINE_ID,
                    filler)[0]


def _table_split(cfg, vocab, widths, n_docs, split_index):
    """Table documents, and with ``table_fraction`` < 1 wrapped prose documents among them."""
    rng = np.random.default_rng([cfg.seed, 4, split_index])
    ids = np.empty((n_docs, cfg.seq_len), dtype=np.int64)
    ids[:, 0] = BOS_ID
    doc_widths = np.empty(n_docs, dtype=np.int64)
    col_starts = np.full((n_docs, max(cfg.table_cols)), -1, dtype=np.int64)
    shifted = np.zeros(n_docs, dtype=np.int64)
    filler = _filler(vocab, rng) if cfg.fill else None
    cols, gaps = sorted(set(cfg.table_cols)), sorted(set(cfg.col_gap))
    for d in range(n_docs):
        if rng.random() < cfg.table_fraction:
            ids[d, 1:], starts, doc_widths[d], shifted[d] = tables.table_document(
                vocab, cfg.seq_len - 1, rng, cols, gaps, cfg.cell_words, cfg.empty_cells, cfg.overflow)
            col_starts[d, :len(starts)] = starts
        else:
            doc_widths[d] = int(rng.choice(widths))
            ids[d, 1:] = _prose_document(cfg, vocab, vocab.lengths, int(doc_widths[d]), rng, filler)
    return CorpusSplit(ids, doc_widths, layout={"col_starts": col_starts, "shifted": shifted})


def _filler(vocab: WordVocab, rng: np.random.Generator):
    """``filler(n)``: a word of exactly ``n`` characters drawn by frequency among those words, or ``None``."""
    lengths = vocab.lengths
    by_len = {int(n): np.flatnonzero(lengths == n) for n in np.unique(lengths)}
    probs = {n: vocab.probs[ids] / vocab.probs[ids].sum() for n, ids in by_len.items()}

    def filler(n: int) -> int | None:
        if n not in by_len:
            return None
        return int(by_len[n][rng.choice(len(by_len[n]), p=probs[n])])
    return filler


def _text_splits(cfg, vocab, widths, words):
    index = {w: i for i, w in enumerate(vocab.words)}
    stream = np.array([index[w] for w in words], dtype=np.int64)
    rng = np.random.default_rng([cfg.seed, 3])
    n, lengths = len(vocab.words), vocab.lengths
    docs, doc_widths, pos = [], [], 0
    while len(docs) < cfg.n_train + cfg.n_val:
        width = int(rng.choice(widths))
        try:
            toks, used = wrap_ids(stream[pos:pos + cfg.seq_len], lengths, width, cfg.seq_len - 1,
                                  FIRST_WORD_ID, FIRST_WORD_ID + n, NEWLINE_ID, long_words=cfg.long_words)
        except ValueError:  # the text ran out; a partial last document is dropped
            break
        docs.append(np.concatenate([[BOS_ID], toks]))
        doc_widths.append(width)
        pos += used
    return split_documents(docs, doc_widths, cfg)


def split_documents(docs: list, doc_widths: list[int], cfg: CorpusConfig) -> dict[str, CorpusSplit]:
    """A text's documents (in text order) split into train and validation: the last ``n_val`` documents, at
    most a fifth of them (at least one), are held out. Fewer than two documents is a :class:`UserError`."""
    if len(docs) < 2:
        raise UserError(f"text too short: it fills {len(docs)} document(s) of {cfg.seq_len} tokens; need 2")
    n_val = min(cfg.n_val, max(1, len(docs) // 5))
    ids, ws = np.asarray(docs, dtype=np.int64), np.asarray(doc_widths, dtype=np.int64)
    return {"train": CorpusSplit(ids[:-n_val], ws[:-n_val]),
            "validation": CorpusSplit(ids[-n_val:], ws[-n_val:])}


def overflowing_cells(labels: dict[str, np.ndarray], layout: dict[str, np.ndarray]) -> int:
    """Cells that run past their column's end (``overflow``), counted in documents without empty cells: the pad
    closing cell ``j`` (its ``cell_index``) of a row ends at column start ``e``; each overflow before it on the
    row makes ``e - j - 1`` one larger."""
    total, col_starts = 0, layout["col_starts"]
    for d in np.flatnonzero((col_starts[:, 0] >= 0) & (layout["shifted"] == 0)):
        pads = np.flatnonzero(labels["is_pad"][d])
        starts = col_starts[d][col_starts[d] >= 0]
        skips = np.searchsorted(starts, labels["count"][d, pads]) - labels["cell_index"][d, pads] - 1
        rows = labels["line_index"][d, pads]
        last = np.r_[rows[1:] != rows[:-1], True] if len(pads) else np.zeros(0, dtype=bool)
        total += int(skips[last].sum())  # skips never fall along a row: its last pad holds the row's count
    return total


def _stats(split: CorpusSplit, tok_lengths: np.ndarray, newline_id: int = NEWLINE_ID,
           pad_by_id: np.ndarray | None = None, over_long: bool = False) -> dict:
    labels = labels_for_split(split.input_ids, split.width, tok_lengths, newline_id, split.layout, pad_by_id,
                              over_long)
    lengths = tok_lengths[split.input_ids]
    is_word = (lengths > 0) & ~labels["is_newline"]
    long = {}
    if over_long:  # words longer than the line (each a token, alone on its line): counted apart
        long = {"over_long_words": int((is_word & labels["over_long"]).sum()),
                "over_long_tokens": int(labels["over_long"].sum())}
        is_word &= ~labels["over_long"]
    prev = np.pad(labels["count"][:, :-1], ((0, 0), (1, 0)))
    spaced = prev > 0  # a word after a non-empty line carries a space ...
    table = {}
    if split.layout is not None:  # ... unless it starts a table's cell; a pad is no word
        is_word &= ~labels["is_pad"]
        spaced &= ~labels["cell_start"]
        rows = labels["line_index"][:, -1] + 1
        is_table = split.layout["col_starts"][:, 0] >= 0
        table = {"table_documents": int(is_table.sum()), "shifted_documents": int(split.layout["shifted"].sum()),
                 "table_rows": int(rows[is_table].sum()), "pads": int(labels["is_pad"].sum()),
                 "pads_determined": int(labels["pad_determined"].sum()),
                 "overflowing_cells": overflowing_cells(labels, split.layout)}
    word_len = (lengths - spaced)[is_word]
    lines = labels["line_index"][:, -1] + 1
    return {
        "documents": len(split.width),
        "tokens": int(split.input_ids.size),
        "newlines": int(labels["is_newline"].sum()),
        "documents_per_width": {int(w): int((split.width == w).sum()) for w in np.unique(split.width)},
        "lines_per_width": {int(w): int(lines[split.width == w].sum()) for w in np.unique(split.width)},
        "word_length_histogram": {int(k): int(v) for k, v in enumerate(np.bincount(word_len)) if v},
        **long,
        **table,
    }


def build_corpus(cfg: CorpusConfig) -> tuple[dict[str, CorpusSplit], WordVocab, list[int]]:
    """The documents of both splits, the word vocabulary and the widths (no disk I/O)."""
    widths = _check(cfg)
    if cfg.text:
        words = read_text_words(cfg.text)
        vocab = text_vocab(words)
        has_over_long(cfg, vocab, widths)  # refuses a word longer than the line with long_words="refuse"
        return _text_splits(cfg, vocab, widths, words), vocab, widths
    check_fits(cfg.max_word_len, min(widths))  # whatever long_words says: here such a word is a bug
    vocab = synthetic_vocab(cfg.vocab_size, cfg.min_word_len, cfg.max_word_len, cfg.zipf, cfg.seed)
    make = _table_split if cfg.layout == "table" else _synthetic_split
    splits = {name: make(cfg, vocab, widths, n, i) for i, (name, n) in enumerate(zip(SPLITS, (cfg.n_train, cfg.n_val)))}
    return splits, vocab, widths


def generate_corpus(cfg: CorpusConfig, out_dir: str | Path, force: bool = False) -> Path:
    """Generate the corpus for ``cfg`` into ``out_dir`` (built in a staging folder, renamed at the end)."""
    out_dir = Path(out_dir)
    refuse_existing(out_dir, force)
    splits, vocab, widths = build_corpus(cfg)
    extra = {}
    if cfg.layout == "table":
        longest = tables.max_pad(sorted(set(cfg.col_gap)), cfg.empty_cells, cfg.overflow)
        extra["table"] = {"first_pad_id": first_pad_id(len(vocab.words)), "min_pad": MIN_PAD, "max_pad": longest,
                          **{k: getattr(cfg, k) for k in TABLE_FIELDS},
                          "labels": {k: TABLE_LABEL_MEANINGS.get(k) for k in ("line_index", "width",
                                                                              *TABLE_LABEL_NAMES)}}
    tokenizer = build_tokenizer(vocab.words, extra["table"]["max_pad"] if extra else 0)
    meta = corpus_meta(cfg, splits, widths, vocab.length_probs().tolist(), len(vocab.words),
                       token_lengths(tokenizer), BOS_ID, NEWLINE_ID, pad_by_id=pad_mask(tokenizer),
                       over_long=has_over_long(cfg, vocab, widths), **extra)
    return write_corpus(out_dir, tokenizer, splits, meta)


def corpus_meta(cfg: CorpusConfig, splits: dict[str, CorpusSplit], widths: list[int],
                word_length_probs: list[float], n_word_types: int, tok_lengths: np.ndarray, bos_id: int,
                newline_id: int, pad_by_id: np.ndarray | None = None, over_long: bool = False, **extra) -> dict:
    """``metadata.json``: the settings, ``extra`` (e.g. ``tokenizer_of``, ``table``), the word-length
    distribution the Bayes references use, the token ids, per-split statistics and the fingerprint of the
    documents (``pad_by_id``: the pad mask of a table corpus's token ids, for its statistics; ``over_long``:
    words longer than the line stood alone, :func:`has_over_long`)."""
    meta = {
        "format": FORMAT,
        "config": config_record(cfg, over_long),
        **extra,
        "text_sha256": hashlib.sha256(Path(cfg.text).read_bytes()).hexdigest() if cfg.text else None,
        "widths": widths,
        "word_length_probs": word_length_probs,
        "n_word_types": n_word_types,
        "vocab_size": len(tok_lengths),
        "seq_len": cfg.seq_len,
        "bos_id": bos_id,
        "newline_id": newline_id,
        "stats": {name: _stats(s, tok_lengths, newline_id, pad_by_id, over_long) for name, s in splits.items()},
    }
    meta["fingerprint"] = _fingerprint(splits, meta)
    return meta


def write_corpus(out_dir: Path, tokenizer, splits: dict[str, CorpusSplit], meta: dict) -> Path:
    """The corpus folder, built in a staging folder and renamed at the end: tokenizer, each split's tensors
    and decoded text, ``metadata.json`` last."""
    with staging_dir(out_dir) as tmp:
        tokenizer.save_pretrained(str(tmp))
        for name, s in splits.items():
            save_tensors(tmp / f"{name}.safetensors", {"input_ids": s.input_ids, "width": s.width,
                                                       **(s.positions or {}), **(s.layout or {})})
            texts = tokenizer.batch_decode(s.input_ids[:, 1:].tolist())
            write_text(tmp / f"{name}.txt", DOC_SEPARATOR.join(texts) + "\n")
        save_json(tmp / "metadata.json", meta)
    return out_dir


def _fingerprint(splits: dict[str, CorpusSplit], meta: dict) -> str:
    h = hashlib.sha256()
    for name in SPLITS:
        h.update(np.ascontiguousarray(splits[name].input_ids).tobytes())
        h.update(np.ascontiguousarray(splits[name].width).tobytes())
        for key in LAYOUT_KEYS if splits[name].layout is not None else ():
            h.update(np.ascontiguousarray(splits[name].layout[key]).tobytes())
    h.update(repr(meta["word_length_probs"]).encode())
    return h.hexdigest()[:16]


def refuse_existing(out_dir: Path, force: bool) -> None:
    """Refuse to replace a folder that is not a corpus, or a corpus without ``force``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output path exists and is not a directory: {out_dir}")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / "metadata.json").exists():
            raise UserError(f"{out_dir} is not empty and not a corpus; refusing to replace it")
        if not force:
            raise UserError(f"{out_dir} already holds a corpus (metadata.json); pass --force to overwrite")


def load_corpus(path: str | Path) -> Corpus:
    """Load a corpus folder; a missing or corrupt one is a :class:`UserError`."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"corpus folder not found: {path}")
    meta = load_json(path / "metadata.json", "corpus metadata")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"not a linebreak corpus (metadata.json format): {path}")
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except Exception as e:
        raise UserError(f"corpus tokenizer is missing or corrupt: {path} ({type(e).__name__})") from None
    splits = {}
    for name in SPLITS:
        t = load_tensors(path / f"{name}.safetensors", f"corpus {name} split")
        ids, width = t.get("input_ids"), t.get("width")
        if ids is None or width is None or ids.ndim != 2 or len(width) != len(ids):
            raise UserError(f"corpus {name} split has the wrong tensors: {path}")
        pos = {k: t[k].numpy() for k in POSITION_KEYS} if all(k in t for k in POSITION_KEYS) else None
        layout = {k: t[k].numpy().astype(np.int64) for k in LAYOUT_KEYS if k in t} if "table" in meta else None
        if layout is not None and (len(layout) < len(LAYOUT_KEYS) or any(len(v) != len(ids) for v in layout.values())):
            raise UserError(f"corpus {name} split has the wrong layout tensors: {path}")
        splits[name] = CorpusSplit(ids.numpy().astype(np.int64), width.numpy().astype(np.int64), pos, layout)
    tok_lengths = token_lengths(tokenizer)
    if int(max(s.input_ids.max() for s in splits.values())) >= len(tok_lengths):
        raise UserError(f"corpus token ids exceed its tokenizer's vocabulary: {path}")
    pads = pad_mask(tokenizer) if "table" in meta else None
    return Corpus(path, meta, tokenizer, splits, tok_lengths, int(meta["newline_id"]), int(meta["bos_id"]), pads)
