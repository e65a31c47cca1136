"""Words longer than the line in ``linebreak generate --text`` (issue 18): a URL or a table rule stands alone
on its own line, its tokens are labelled ``over_long``, counted in the metadata and left out of the
statistics and the newline metrics; ``long_words="refuse"`` and synthetic corpora keep refusing."""

import dataclasses
import json

import numpy as np
import pytest

from linebreak.corpus import CorpusConfig, generate_corpus, load_corpus
from linebreak.corpus.labels import over_long_lines, token_labels
from linebreak.corpus.store import DOC_SEPARATOR, TABLE_FIELDS
from linebreak.corpus.wrap import WrapError, wrap_ids
from linebreak.io import UserError
from linebreak.probe.manifold import word_rows
from linebreak.train.baselines import break_prob_posterior, newline_positions

URL = "https://www.example.org/licences/LICENCE-2.0/terms.html"  # 55 characters
RULE = "+" + "-" * 88 + "+"  # a table rule of 90 characters
WORDS = ("the", "cat", "sat", "on", "a", "mat", "quietly", "while", "it", "rained", "licence", "terms")
WIDTH = 40


def _text(n_words: int = 2500, seed: int = 0) -> str:
    """Short words with the URL (55 characters) and the rule (90) every 40 words or so."""
    rng = np.random.default_rng(seed)
    words = [WORDS[i] for i in rng.integers(0, len(WORDS), n_words)]
    for i in range(20, n_words, 40):
        words[i] = URL if rng.random() < 0.5 else RULE
    return " ".join(words) + "\n"


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "licence.txt"
    path.write_text(_text(), encoding="utf-8")
    return path


def _cfg(src, **kw) -> CorpusConfig:
    return CorpusConfig(**{"widths": str(WIDTH), "seq_len": 64, "n_train": 30, "n_val": 6, "text": str(src), **kw})


@pytest.fixture(scope="module")
def corpus(src, tmp_path_factory):
    return load_corpus(generate_corpus(_cfg(src), tmp_path_factory.mktemp("corpus") / "c"))


def test_wrap_ids_places_an_over_long_word_alone():
    lengths = np.array([3, 12, 2])  # word 1 is longer than the width 8
    ids, used = wrap_ids(np.array([0, 0, 1, 2, 0]), lengths, 8, 7, 10, 20, 2, long_words="alone")
    assert ids.tolist() == [10, 20, 2, 11, 2, 12, 20] and used == 5  # "abc abc\nLONG\nde abc"
    with pytest.raises(WrapError, match="shorter than the longest word"):
        wrap_ids(np.array([0, 1]), lengths, 8, 4, 10, 20, 2)  # the default refuses
    with pytest.raises(UserError, match="long_words"):
        wrap_ids(np.array([0]), lengths, 8, 1, 10, 20, 2, long_words="split")


def test_over_long_words_stand_alone_marked_and_counted(corpus):
    """Each URL and rule alone on its line; exactly the tokens of those lines (and the newline ending each)
    are labelled over_long; the metadata counts them and keeps them out of the word-length histogram."""
    assert len(URL) == 55 and len(RULE) == 90
    assert corpus.over_long and corpus.meta["config"]["long_words"] == "alone"
    stats, n_long, seen = corpus.meta["stats"], 0, set()
    for split in ("train", "validation"):
        s, lab = corpus.splits[split], corpus.labels(split)
        texts = (corpus.path / f"{split}.txt").read_text(encoding="utf-8").rstrip("\n").split(DOC_SEPARATOR)
        for d, text in enumerate(texts):
            assert corpus.tokenizer.decode(s.input_ids[d, 1:].tolist()) == text
            for line_no, line in enumerate(text.split("\n")):
                on_line = (lab["line_index"][d] == line_no) & ~lab["is_newline"][d]
                on_line[0] = False  # <bos>
                ends = lab["is_newline"][d] & (lab["line_index"][d] == line_no + 1)
                long = len(line) > WIDTH
                assert not long or line in (URL, RULE)  # alone on its line: no other word shares it
                assert (lab["over_long"][d][on_line] == long).all() and (lab["over_long"][d][ends] == long).all()
                n_long += long
                seen |= {line} if long else set()
        tokens = s.input_ids
        words = ((tokens >= 3) & ~lab["is_newline"]) & lab["over_long"]
        assert stats[split]["over_long_words"] == int(words.sum()) == int((lab["count"] > WIDTH).sum())
        assert stats[split]["over_long_tokens"] == int(lab["over_long"].sum())
        assert max(map(int, stats[split]["word_length_histogram"])) <= len("quietly")
    assert n_long >= 10 and n_long == sum(s["over_long_words"] for s in stats.values()) and seen == {URL, RULE}


def test_over_long_label_is_the_one_label_functions():
    """over_long comes from token_labels' counts: a line longer than the width, its newline included."""
    lab = token_labels(np.array([0, 3, 4, 1, 12, 1, 2]), np.array([0, 0, 0, 1, 0, 1, 0], bool), 8)
    assert over_long_lines(lab).tolist() == [False, False, False, False, True, True, False]


def test_over_long_rows_are_left_out_of_the_statistics(corpus):
    """word_rows (probe centroids, the qk queries) and the scored newline decisions skip over-long lines; the
    Bayes posterior keeps the true width after one (a break that came never has posterior 0)."""
    lab = corpus.labels("train")
    lab["token_len"] = corpus.token_lengths[corpus.splits["train"].input_ids]
    assert lab["over_long"].any()
    assert not (word_rows(lab) & lab["over_long"]).any()
    scored = newline_positions(lab)
    assert not (scored & lab["over_long"]).any()
    after = np.cumsum(lab["over_long"], axis=1) > 0  # positions after an over-long word
    post = break_prob_posterior(lab, corpus.widths, corpus.word_length_probs)
    broke = scored & lab["next_is_newline"]
    assert (broke & after).any() and (post[broke] > 0).all()


def test_attention_to_an_over_long_lines_newline_is_not_read(corpus):
    """The response curves and the key-side test skip queries whose previous newline ends an over-long line
    (its width is no wrap decision); every other query with a previous newline is kept."""
    from linebreak.qk.collect import newline_queries, select_docs

    ids, lab = select_docs(corpus, "train", 64)
    rows = newline_queries(lab)
    b = np.arange(len(ids))[:, None]
    after_long = lab["over_long"][b, np.maximum(lab["prev_nl"], 0)] & (lab["prev_nl"] >= 0)
    assert (lab["query"] & after_long).any() and not (rows & after_long).any()
    assert (rows == (lab["query"] & (lab["prev_nl"] >= 0) & ~after_long)).all()


def test_refuse_keeps_the_one_line_error(cli, src, tmp_path):
    with pytest.raises(WrapError, match="--long-words alone"):
        generate_corpus(_cfg(src, long_words="refuse"), tmp_path / "c")
    rc, _, err = cli("generate", "--out", tmp_path / "c", "--text", src, "--widths", "40", "--long-words", "refuse")
    assert rc == 2 and "shorter than the longest word" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()
    rc, _, err = cli("generate", "--out", tmp_path / "c", "--text", src, "--long-words", "split")
    assert rc == 2 and "long_words" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(UserError, match="long_words"):
        CorpusConfig(long_words="split")


def test_synthetic_words_longer_than_the_line_still_refuse(cli, tmp_path):
    for long_words in ("alone", "refuse"):
        with pytest.raises(WrapError, match="shorter than the longest word"):
            generate_corpus(CorpusConfig(widths="8:12", max_word_len=10, n_train=4, n_val=2, seq_len=16,
                                         long_words=long_words), tmp_path / "c")
    rc, _, err = cli("generate", "--out", tmp_path / "c", "--preset", "tiny", "--widths", "4:10",
                     "--long-words", "alone")
    assert rc == 2 and "shorter than the longest word" in err and not (tmp_path / "c").exists()


def test_same_seed_same_bytes_and_the_count_printed(cli, src, tmp_path):
    args = ("--text", src, "--widths", "40", "--seq-len", "64", "--n-train", "30", "--n-val", "6")
    rc, out, _ = cli("generate", "--out", tmp_path / "a", *args)
    assert rc == 0 and "over-long words" in out
    assert cli("generate", "--out", tmp_path / "b", *args)[0] == 0
    for f in sorted(p.name for p in (tmp_path / "a").iterdir()):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_a_text_without_over_long_words_is_unchanged(tmp_path):
    """No word longer than the narrowest width: no long_words setting in the record, no over_long label or
    counts, and the same bytes whatever long_words says."""
    path = tmp_path / "t.txt"
    path.write_text(_text(), encoding="utf-8")
    a = load_corpus(generate_corpus(_cfg(path, widths="90:100"), tmp_path / "a"))
    b = generate_corpus(_cfg(path, widths="90:100", long_words="refuse"), tmp_path / "b")
    assert not a.over_long and "long_words" not in a.meta["config"] and "over_long" not in a.labels("train")
    assert not any(k.startswith("over_long") for s in a.meta["stats"].values() for k in s)
    for f in sorted(p.name for p in a.path.iterdir()):
        assert (a.path / f).read_bytes() == (b / f).read_bytes(), f
    record = json.loads((a.path / "metadata.json").read_text())["config"]  # the settings it had before
    assert list(record) == [f.name for f in dataclasses.fields(CorpusConfig)
                            if f.name not in ("long_words", "layout", *TABLE_FIELDS)]


def test_training_on_over_long_words_skips_their_lines(corpus, tmp_path):
    """A tiny training run on such a corpus: the newline metrics score exactly the positions off over-long
    lines, with finite references."""
    from linebreak.presets import TRAIN
    from linebreak.train.loop import train
    from linebreak.train.metrics import evaluate_newlines

    tiny = TRAIN["tiny"].train
    cfg = dataclasses.replace(tiny, optim=dataclasses.replace(tiny.optim, steps=20, eval_every=20))
    run = train(cfg, corpus, tmp_path / "m")
    lab = corpus.labels("validation")
    m = evaluate_newlines(run.model, corpus)
    kept = newline_positions(lab)
    assert m["positions"] == int(kept.sum())
    lab.pop("over_long")
    assert m["positions"] < int(newline_positions(lab).sum())  # the over-long words' breaks are not scored
    assert np.isfinite([m["newline_ce"], m["newline_ce_posterior"], m["info_captured"]]).all()
    assert np.isfinite(run.metrics.newline_ce)


def test_study_passes_long_words_to_its_corpus(tmp_path):
    from linebreak.study.pipeline import StudyConfig, resolve

    text = tmp_path / "t.txt"
    text.write_text("a b c")
    assert resolve(StudyConfig(text=str(text), long_words="refuse")).train.data.long_words == "refuse"
    assert resolve(StudyConfig(text=str(text))).train.data.long_words == "alone"
    with pytest.raises(UserError, match="long_words must be"):
        StudyConfig(long_words="wrap")
