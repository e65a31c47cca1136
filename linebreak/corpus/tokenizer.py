"""The corpus tokenizer: a token per word (``"word"`` line-initial, ``" word"`` after a space) and ``"\\n"``.

It is a Hugging Face ``tokenizers`` WordLevel model whose pre-tokenizer isolates ``" ?[^ \\n]+"`` and
``"\\n"`` and whose decoder simply concatenates tokens, wrapped as a ``PreTrainedTokenizerFast``. Saved with
the corpus, it loads offline with ``AutoTokenizer.from_pretrained(dir)``, and ``decode`` returns the exact
text. Token ids are laid out so that wrapping can emit ids directly (:func:`linebreak.corpus.wrap.wrap_ids`):

    0 <bos>, 1 <unk>, 2 "\\n", 3 .. 3+n-1 the n words, 3+n .. 3+2n-1 the same words with a leading space.

Table corpora (:mod:`linebreak.corpus.tables`) also need *pad tokens*, one per run of ``k`` spaces for
``k = 2 .. max_pad`` (character length ``k``), appended after those ids: ``3+2n + (k-2)``. So a word
tokenizer's ids are the same with or without pads. A run of spaces is at least two long, so it is never
confused with the single space of ``" word"``, and the pre-tokenizer of a padded tokenizer
(``" [^ \\n]+|[^ \\n]+| +|\\n"``) splits a table's text back into exactly its tokens. Without pads
(``max_pad=0``) the tokenizer is byte for byte the one of wrapped-prose corpora.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BOS, UNK, NEWLINE = "<bos>", "<unk>", "\n"
BOS_ID, UNK_ID, NEWLINE_ID, FIRST_WORD_ID = 0, 1, 2, 3
PATTERN = r" ?[^ \n]+|\n"
PAD_PATTERN = r" [^ \n]+|[^ \n]+| +|\n"  # a word after a space, a cell's first word, a pad, a newline
MIN_PAD = 2  # the shortest pad: one space would read as the space before a word


def first_pad_id(n_words: int) -> int:
    """The id of the pad of ``MIN_PAD`` spaces in a tokenizer over ``n_words`` words (pad ``k``: ``+ k - 2``)."""
    return FIRST_WORD_ID + 2 * n_words


def build_tokenizer(words: Sequence[str], max_pad: int = 0):
    """A ``PreTrainedTokenizerFast`` over ``words`` with the id layout above (pads up to ``max_pad`` spaces)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {BOS: BOS_ID, UNK: UNK_ID, NEWLINE: NEWLINE_ID}
    n = len(words)
    for i, w in enumerate(words):
        vocab[w] = FIRST_WORD_ID + i
        vocab[" " + w] = FIRST_WORD_ID + n + i
    if len(vocab) != 3 + 2 * n:
        raise ValueError("words must be distinct and must not contain spaces or newlines")
    for k in range(MIN_PAD, max_pad + 1):
        vocab[" " * k] = first_pad_id(n) + k - MIN_PAD
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(PAD_PATTERN if max_pad else PATTERN), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=BOS, unk_token=UNK,
                                   model_input_names=["input_ids", "attention_mask"])


def token_lengths(tokenizer) -> np.ndarray:
    """Characters per token id ([vocab]); special tokens (``<bos>``, ``<unk>``) have length 0."""
    vocab = tokenizer.get_vocab()
    out = np.zeros(len(vocab), dtype=np.int64)
    special = set(tokenizer.all_special_tokens)
    for tok, i in vocab.items():
        out[i] = 0 if tok in special else len(tok)
    return out


def pad_mask(tokenizer) -> np.ndarray:
    """Is each token id a pad (a run of spaces)? ([vocab] bool; all False for a word tokenizer.)"""
    vocab = tokenizer.get_vocab()
    out = np.zeros(len(vocab), dtype=bool)
    for tok, i in vocab.items():
        out[i] = len(tok) >= MIN_PAD and not tok.strip(" ")
    return out
