"""Corpora: synthetic words, greedy wrapping or column-aligned tables, the one label function, tokenizer, folders."""

from linebreak.corpus.labels import LABEL_NAMES, TABLE_LABEL_NAMES, labels_for_split, token_labels
from linebreak.corpus.store import Corpus, CorpusConfig, CorpusSplit, generate_corpus, load_corpus

__all__ = ["LABEL_NAMES", "TABLE_LABEL_NAMES", "Corpus", "CorpusConfig", "CorpusSplit", "generate_corpus",
           "labels_for_split", "load_corpus", "token_labels"]
