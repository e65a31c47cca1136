"""Wrapping properties, determinism, the tokenizer round trip, --text re-wrapping and bad input."""

import numpy as np
import pytest

from linebreak.corpus import CorpusConfig, generate_corpus, load_corpus
from linebreak.corpus.store import DOC_SEPARATOR
from linebreak.corpus.wrap import WrapError, wrap_words
from linebreak.io import UserError

TINY = CorpusConfig(widths="12:24", seq_len=64, n_train=20, n_val=8, vocab_size=40, max_word_len=6)


@pytest.mark.parametrize("seed", range(30))
def test_greedy_wrap_properties(seed):
    rng = np.random.default_rng(seed)
    words = ["x" * int(n) for n in rng.integers(1, 9, size=int(rng.integers(1, 60)))]
    width = int(rng.integers(8, 40))
    lines = wrap_words(words, width)
    assert all(len(line) <= width for line in lines)  # no line over its width
    for line, nxt in zip(lines, lines[1:]):  # no line could have taken its next word
        assert len(line) + 1 + len(nxt.split(" ")[0]) > width
    assert " ".join(lines).split(" ") == words  # the text round-trips


def test_word_longer_than_width_is_an_error():
    with pytest.raises(WrapError, match="shorter than the longest word"):
        wrap_words(["ab", "abcdefgh"], 5)


def test_widths_are_parsed_once_into_a_tuple():
    assert CorpusConfig(widths="20,40,60").widths == (20, 40, 60)
    assert CorpusConfig(widths="20:23").widths == (20, 21, 22, 23)
    assert CorpusConfig(widths=[20, 40]).widths == (20, 40)  # from a JSON sweep config
    for bad in ("0,10", "-5:10", "a,b", "30:20", ""):
        with pytest.raises(UserError):
            CorpusConfig(widths=bad)


def test_corpus_layout_roundtrip_and_determinism(tmp_path):
    a = generate_corpus(TINY, tmp_path / "a")
    b = generate_corpus(TINY, tmp_path / "b")
    for name in ("metadata.json", "train.safetensors", "validation.safetensors", "train.txt",
                 "tokenizer.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    c = load_corpus(a)
    split = c.splits["validation"]
    assert split.input_ids.shape == (8, 64) and split.input_ids.dtype == np.int64
    assert (split.input_ids[:, 0] == c.bos_id).all()
    assert set(split.width.tolist()) <= set(range(12, 25))
    texts = (a / "validation.txt").read_text().rstrip("\n").split(DOC_SEPARATOR)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(a))  # offline, from the corpus folder alone
    for ids, text, width in zip(split.input_ids, texts, split.width):
        assert tok.decode(ids[1:].tolist()) == text  # decoding gives back the exact text
        assert tok(text)["input_ids"] == ids[1:].tolist()
        assert max(len(line) for line in text.split("\n")) <= width
    assert c.token_lengths[c.bos_id] == 0 and c.token_lengths[c.newline_id] == 1
    stats = c.meta["stats"]["train"]
    assert stats["documents"] == 20 and stats["tokens"] == 20 * 64
    assert set(stats["word_length_histogram"]) <= {str(i) for i in range(1, 7)}
    assert sum(stats["documents_per_width"].values()) == 20
    other = generate_corpus(CorpusConfig(**{**TINY.__dict__, "seed": 1}), tmp_path / "s1")
    assert (other / "train.safetensors").read_bytes() != (a / "train.safetensors").read_bytes()


def test_filled_corpus_is_deterministic_and_round_trips(tmp_path):
    cfg = CorpusConfig(**{**TINY.__dict__, "fill": True})
    a, b = generate_corpus(cfg, tmp_path / "a"), generate_corpus(cfg, tmp_path / "b")
    assert (a / "train.safetensors").read_bytes() == (b / "train.safetensors").read_bytes()
    c = load_corpus(a)
    texts = (a / "validation.txt").read_text().rstrip("\n").split(DOC_SEPARATOR)
    for text, width in zip(texts, c.splits["validation"].width):
        lines = text.split("\n")
        assert all(len(line) in (width - 1, width) for line in lines[:-1])  # finished lines reach the width
        assert len(lines[-1]) <= width
    greedy = generate_corpus(TINY, tmp_path / "g")
    assert (greedy / "train.safetensors").read_bytes() != (a / "train.safetensors").read_bytes()


def test_length_bias_changes_word_lengths_per_document(tmp_path):
    base = load_corpus(generate_corpus(TINY, tmp_path / "a"))
    biased_cfg = CorpusConfig(**{**TINY.__dict__, "length_bias": 1.0})
    biased = load_corpus(generate_corpus(biased_cfg, tmp_path / "b"))

    def spread(c):  # spread across documents of the mean token length
        lengths = c.token_lengths[c.splits["train"].input_ids]
        return lengths.mean(axis=1).std()

    assert spread(biased) > 2 * spread(base)


def test_text_file_is_rewrapped(tmp_path):
    rng = np.random.default_rng(0)
    vocab = ["the", "cat", "sat", "on", "a", "mat", "quietly", "while", "it", "rained"]
    words = [vocab[i] for i in rng.integers(0, len(vocab), 3000)]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(" ".join(words[i:i + 9]) for i in range(0, len(words), 9)) + "\n")
    cfg = CorpusConfig(widths="10,20,30", seq_len=64, n_train=1000, n_val=5, text=str(src))
    c = load_corpus(generate_corpus(cfg, tmp_path / "c"))
    docs = [c.tokenizer.decode(ids[1:].tolist()) for s in ("train", "validation")
            for ids in c.splits[s].input_ids]
    rewrapped = [w for d in docs for w in d.split()]  # consecutive chunks of the text's word stream
    assert len(rewrapped) > 1000 and rewrapped == words[:len(rewrapped)]
    assert set(c.splits["train"].width.tolist()) <= {10, 20, 30}
    assert len(c.splits["validation"].width) == 5 and c.meta["n_word_types"] == len(vocab)
    assert c.meta["text_sha256"]


def test_text_rewrapped_for_another_tokenizer(tmp_path):
    """corpus.external: the same prose tokenized by another model's tokenizer (here a corpus folder's), with
    the folder steps the plain generator uses: the same split rule, metadata layout and refusals."""
    from linebreak.corpus.external import generate_with_tokenizer
    from linebreak.io import UserError

    rng = np.random.default_rng(1)
    vocab = ["the", "cat", "sat", "on", "a", "mat", "quietly", "while", "it", "rained"]
    src = tmp_path / "in.txt"
    src.write_text(" ".join(vocab[i] for i in rng.integers(0, len(vocab), 3000)) + "\n")
    cfg = CorpusConfig(widths="10,20,30", seq_len=64, n_train=1000, n_val=5, text=str(src))
    own = generate_corpus(cfg, tmp_path / "own")
    ext = load_corpus(generate_with_tokenizer(cfg, own, tmp_path / "ext"))
    meta = ext.meta
    assert list(meta)[:4] == ["format", "config", "tokenizer_of", "text_sha256"] and meta["tokenizer_of"] == str(own)
    assert list(meta)[-2:] == ["stats", "fingerprint"] and meta["text_sha256"] == load_corpus(own).meta["text_sha256"]
    n_docs = sum(len(s.width) for s in ext.splits.values())
    assert len(ext.splits["validation"].width) == min(5, max(1, n_docs // 5)) and n_docs > 20
    assert (ext.splits["train"].input_ids[:, 0] == meta["bos_id"]).all()
    assert meta["stats"]["train"]["newlines"] == int((ext.splits["train"].input_ids == ext.newline_id).sum())
    text = (tmp_path / "ext" / "train.txt").read_text()
    assert text.count(DOC_SEPARATOR) == len(ext.splits["train"].width) - 1
    with pytest.raises(UserError, match="--force"):
        generate_with_tokenizer(cfg, own, tmp_path / "ext")
    src.write_text("the cat sat\n")
    with pytest.raises(UserError, match="text too short"):
        generate_with_tokenizer(cfg, own, tmp_path / "short")


def test_generate_reads_presets_without_the_training_code(tmp_path):
    """`linebreak generate` takes its data presets from linebreak.presets: the training loop is not imported."""
    import subprocess
    import sys

    code = ("import sys; from linebreak.cli import main; rc = main(['generate', '--preset', 'tiny', '--out', "
            f"{str(tmp_path / 'c')!r}, '--n-train', '8', '--n-val', '2']); "
            "print(rc, sorted(m for m in sys.modules if m.startswith('linebreak.train')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 ['linebreak.train', 'linebreak.train.config', 'linebreak.train.model']"


@pytest.mark.parametrize("override, message", [
    ({"widths": "0,10"}, "positive"),
    ({"widths": "4:10"}, "shorter than the longest word"),
    ({"seq_len": 1}, "seq_len"),
])
def test_bad_settings_are_user_errors(cli, tmp_path, override, message):
    flags = [x for k, v in override.items() for x in (f"--{k.replace('_', '-')}", v)]
    rc, _, err = cli("generate", "--out", tmp_path / "c", "--preset", "tiny", *flags)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


def test_bad_text_and_unknown_preset(cli, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    rc, _, err = cli("generate", "--out", tmp_path / "c", "--preset", "tiny", "--text", empty)
    assert rc == 2 and "no words" in err
    missing = tmp_path / "missing.txt"
    rc, _, err = cli("generate", "--out", tmp_path / "c", "--preset", "tiny", "--text", missing)
    assert rc == 2 and "not found" in err
    long_word = tmp_path / "long.txt"
    long_word.write_text("short " + "x" * 40 + " words\n")
    rc, _, err = cli("generate", "--out", tmp_path / "c", "--preset", "tiny", "--text", long_word,
                     "--long-words", "refuse")  # the default, alone, puts it on a line of its own (test_long_words)
    assert rc == 2 and "longest word" in err
    rc, _, err = cli("generate", "--out", tmp_path / "c", "--preset", "tiny", "--text", long_word, "--fill", "yes")
    assert rc == 2 and "synthetic words only" in err and len(err.strip().splitlines()) == 1
    rc, _, err = cli("generate", "--out", tmp_path / "c", "--preset", "tiny", "--fill", "maybe")
    assert rc == 2 and "true/false" in err
    rc, _, err = cli("generate", "--out", tmp_path / "c", "--preset", "nope")
    assert rc == 2 and "unknown preset" in err


def test_existing_output_is_refused_without_force(cli, tmp_path):
    out = tmp_path / "c"
    assert cli("generate", "--out", out, "--preset", "tiny")[0] == 0
    before = (out / "train.safetensors").read_bytes()
    rc, _, err = cli("generate", "--out", out, "--preset", "tiny", "--seed", "3")
    assert rc == 2 and "--force" in err
    assert (out / "train.safetensors").read_bytes() == before
    rc, _, err = cli("generate", "--out", out, "--preset", "tiny", "--widths", "2:3", "--force")  # fails late
    assert rc == 2 and (out / "train.safetensors").read_bytes() == before
    assert cli("generate", "--out", out, "--preset", "tiny", "--seed", "3", "--force")[0] == 0
    assert (out / "train.safetensors").read_bytes() != before
    stranger = tmp_path / "notes"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("mine")
    rc, _, err = cli("generate", "--out", stranger, "--preset", "tiny", "--force")
    assert rc == 2 and (stranger / "keep.txt").read_text() == "mine"


def test_missing_or_corrupt_corpus(tmp_path):
    from linebreak.io import UserError

    with pytest.raises(UserError, match="not found"):
        load_corpus(tmp_path / "nothing")
    good = generate_corpus(TINY, tmp_path / "c")
    (good / "train.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="corrupt"):
        load_corpus(good)
    (good / "metadata.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_corpus(good)


def test_markov_text_follows_its_bigram_model_and_is_reproducible(tmp_path):
    import subprocess
    import sys

    from linebreak.corpus.words import markov_chain, markov_word_ids, synthetic_vocab

    vocab = synthetic_vocab(60, 1, 6, 0.8, seed=0)
    T = markov_chain(vocab, 4, np.random.default_rng(1))
    assert np.allclose(T.sum(1), 1) and ((T > 0).sum(1) == 4).all()
    ids = markov_word_ids(T, 20_000, np.random.default_rng(2))
    assert (T[ids[:-1], ids[1:]] > 0).all()  # every step is one the model allows
    # the empirical transition frequencies match the model (a word's four successors, at their weights)
    w = int(np.bincount(ids).argmax())
    after = np.bincount(ids[1:][ids[:-1] == w], minlength=len(T)) / (ids[:-1] == w).sum()
    assert np.abs(after - T[w]).max() < 0.05
    with pytest.raises(ValueError):
        markov_chain(vocab, 0, np.random.default_rng(1))
    from pathlib import Path

    script = [str(Path(__file__).parents[1] / "scripts" / "markov_text.py"), "--words", "3000", "--successors", "5"]
    for name in ("a.txt", "b.txt"):
        subprocess.run([sys.executable, *script, "--out", str(tmp_path / name)], check=True)
    text = (tmp_path / "a.txt").read_bytes()
    assert text == (tmp_path / "b.txt").read_bytes() and len(text.split()) == 3000
    corpus = load_corpus(generate_corpus(CorpusConfig(text=str(tmp_path / "a.txt"), widths="20:30", seq_len=64,
                                                       n_train=20, n_val=4), tmp_path / "c"))
    assert len(corpus.splits["train"].input_ids) >= 10
    bad = subprocess.run([sys.executable, *script, "--successors", "0", "--out", str(tmp_path / "x.txt")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.txt").exists()
    again = subprocess.run([sys.executable, *script, "--seed", "1", "--out", str(tmp_path / "a.txt")],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "--force" in again.stderr and (tmp_path / "a.txt").read_bytes() == text


def test_prose_text_keeps_lengths_and_a_small_vocabulary(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    src = tmp_path / "docs"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("The cat sat on the mat.\nThe dog sat too, extraordinarily happily.\n")
    (src / "sub" / "b.md").write_text("# the end\nthe cat ran\n")
    (src / "skip.py").write_text("not read at all\n")
    script = [sys.executable, str(Path(__file__).parents[1] / "scripts" / "prose_text.py"), str(src),
              "--vocab", "3", "--max-word-len", "8"]
    for name in ("a.txt", "b.txt"):
        subprocess.run([*script, "--out", str(tmp_path / name)], check=True)
    text = (tmp_path / "a.txt").read_text()
    assert text == (tmp_path / "b.txt").read_text()  # same inputs, same bytes
    words = text.split()
    # files in path order, lowercased; "extraordinarily" (15 > 8 characters) dropped; the 3 most frequent
    # words ("the" 4, "cat" 2, "sat" 2) kept, every other word a run of "_" of its own length
    original = "the cat sat on the mat. the dog sat too, happily. # the end the cat ran".split()
    assert [len(w) for w in words] == [len(w) for w in original]
    assert {w for w in words if not set(w) <= {"_"}} == {"the", "cat", "sat"}
    bad = subprocess.run([*script[:2], str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.txt")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.txt").exists()
    again = subprocess.run([*script, "--out", str(tmp_path / "a.txt")], capture_output=True, text=True)
    assert again.returncode == 2 and "--force" in again.stderr
