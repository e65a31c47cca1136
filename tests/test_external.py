"""External corpora (`study --model DIR --text FILE`): characters per token from the tokenizer's own offsets.

Tiny tokenizers are trained here with the `tokenizers` library, shaped like the real families: byte-level
BPE with GPT-2's pre-tokenizer, byte-level BPE with Llama-3's (which merges punctuation with the newline,
".\\n"), SentencePiece-like BPE with `▁` and byte fallback (Llama-2: Metaspace, a prefix space; Gemma: no
pre-tokenizer, so it learns "\\n\\n", " \\n", "\\n  " and merges across words). Each is saved to a folder as a
model's tokenizer is and loaded back the way `external.py` loads it. Nothing is downloaded.
"""

import unicodedata

import numpy as np
import pytest

from linebreak.corpus.external import generate_with_tokenizer, load_tokenizer
from linebreak.corpus.labels import labels_for_split
from linebreak.corpus.offsets import (
    POSITION_KEYS,
    CharCounter,
    encode_lines,
    labels_for_positions,
    position_labels,
    positions,
)
from linebreak.corpus.store import CorpusConfig, load_corpus
from linebreak.corpus.wrap import WrapError, wrap_words
from linebreak.io import UserError

WORDS = ("the a of to and in is it that was for on as with his they at be this from have or by one had not "
         "but what all were when we there can an your which their said if do will each about how up out them "
         "café crème brûlée naïve señor Zürich œuvre façade déjà garçon smörgåsbord São Paulo 5€ ✓ "
         "internationalisation counterrevolutionary incomprehensibilities unbelievably").split()
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<unk>", "<bos>", "<eos>"] + [f"<0x{i:02X}>" for i in range(256)]
URL = "https://www.example.org/licenses/LICENSE-2.0/terms.html"  # 55 characters


def prose(n_words: int, seed: int = 0, extra: tuple[str, ...] = ()) -> str:
    """Sentences of random words (the long ones rare), ending in periods."""
    rng = np.random.default_rng(seed)
    vocab = list(WORDS) + list(extra)
    p = np.array([1.0 if len(w) < 15 else 0.2 for w in vocab])
    return " ".join(w + ("." if rng.random() < 0.12 else "") for w in rng.choice(vocab, size=n_words, p=p / p.sum()))


def _training_text() -> list[str]:
    # wrapped prose with paragraphs, trailing spaces and indents, so that merged newlines are learned
    lines = wrap_words(prose(6000, seed=1).split(), 30)
    text = "".join(line + rng_sep for line, rng_sep in zip(lines, ["\n", "\n\n", " \n", "\n  "] * len(lines)))
    return [text[i:i + 2000] for i in range(0, len(text), 2000)]


def _fast(core, bos: str, eos: str, **kw):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=bos, eos_token=eos, **kw)


def byte_bpe(regex: str | None = None, vocab: int = 700):
    """GPT-2 (``regex=None``: its ByteLevel pre-tokenizer) or Llama-3 / Qwen (``LLAMA3``) shaped BPE."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    core = Tokenizer(models.BPE())
    byte = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=regex is None)
    core.pre_tokenizer = byte if regex is None else pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(regex), "isolated"), byte])
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(_training_text(), trainers.BpeTrainer(
        vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<|endoftext|>"],
        show_progress=False))
    from tokenizers import processors

    core.post_processor = processors.ByteLevel(trim_offsets=True)  # as GPT-2's: offsets without the space
    return _fast(core, "<|endoftext|>", "<|endoftext|>")


def sp_bpe(style: str = "gemma", vocab: int = 260):
    """SentencePiece-shaped BPE with ``▁`` and byte fallback: ``"gemma"`` (no pre-tokenizer, no prefix space)
    or ``"llama2"`` (Metaspace, a prefix space before the text)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    core = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    if style == "gemma":
        core.normalizer = normalizers.Replace(" ", "▁")
        core.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    else:
        core.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
        core.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(prepend_scheme="first")])
    core.train_from_iterator(_training_text(), trainers.BpeTrainer(
        vocab_size=len(SPECIALS) + vocab, special_tokens=SPECIALS, show_progress=False))
    return _fast(core, "<bos>", "<eos>", unk_token="<unk>")


TOKENIZERS = {"gpt2": lambda: byte_bpe(), "llama3": lambda: byte_bpe(LLAMA3), "gemma": lambda: sp_bpe("gemma"),
              "llama2": lambda: sp_bpe("llama2")}


@pytest.fixture(scope="module")
def tok_dirs(tmp_path_factory):
    """Each tokenizer saved to its own folder, as a model's is."""
    root = tmp_path_factory.mktemp("tokenizers")
    for name, make in TOKENIZERS.items():
        make().save_pretrained(root / name)
    return {name: root / name for name in TOKENIZERS}


def _lines_text(seed: int, width: int = 30, n_words: int = 120) -> list[str]:
    return wrap_words(prose(n_words, seed).split(), width)


def _reference_done(tok, ids) -> list[int]:
    """Characters complete after each token, by decoding every prefix whole (slow, obviously right)."""
    return [len(tok.decode(ids[:t + 1], clean_up_tokenization_spaces=False).rstrip("\ufffd"))
            for t in range(len(ids))]


@pytest.mark.parametrize("name", list(TOKENIZERS))
def test_offsets_and_decoding_count_the_same_characters(tok_dirs, name):
    """Both ways of counting give, after each token, the characters of the text complete so far: a
    character split over byte tokens counts once, on the token that completes it."""
    tok = load_tokenizer(tok_dirs[name])
    text = " ".join(_lines_text(3)) + " déjà ✓ 5€ smörgåsbord"
    ids, done = CharCounter(tok, "offsets").encode(text)
    ids2, done2 = CharCounter(tok, "decoding").encode(text)
    assert (ids == ids2).all() and (done == done2).all()
    assert done.tolist() == _reference_done(tok, ids.tolist()) and done[-1] == len(text)
    assert (np.diff(done) >= 0).all()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> symbol table (the byte-level alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def test_byte_level_counts_characters_not_bytes_or_token_strings(tok_dirs):
    """GPT-2-shaped byte-level BPE: "Ġ" is one space, "Ã©" one "é", and a character left in byte tokens
    (never seen in training: "ß", "ł", "ó") counts once, on the token that completes it."""
    tok = load_tokenizer(tok_dirs["gpt2"])
    text = "the café was naïve in łódź, straße ✓ 5€"
    ids, done = CharCounter(tok).encode(text)
    strings = tok.convert_ids_to_tokens(ids.tolist())
    byte_of = {u: b for b, u in _bytes_to_unicode().items()}
    raw = bytes(byte_of[ch] for s in strings for ch in s)  # one symbol per byte
    assert raw == text.encode("utf-8")
    ends = np.cumsum([len(s) for s in strings])
    reference = [len(raw[:n].decode("utf-8", "ignore")) for n in ends]  # characters complete in the bytes so far
    assert done.tolist() == reference
    chars = np.diff(done, prepend=0)
    inside = [t for t, n in enumerate(ends) if len(raw[:n].decode("utf-8", "ignore").encode("utf-8")) < n]
    # tokens ending inside a character do not count it (one holding only its first bytes counts 0) ...
    assert len(inside) >= 3 and (chars[inside] == 0).any()
    assert all(done[t] < len(raw[:ends[t] + 3].decode("utf-8", "ignore")) for t in inside)  # ... a later one does
    assert chars.sum() == len(text) < sum(len(s) for s in strings)
    t = next(t for t, s in enumerate(strings) if s.startswith("Ġ") and s.endswith("Ã©"))
    assert len(strings[t]) == chars[t] + 1 and text[done[t] - chars[t]:done[t]] == " café"[-chars[t]:]


@pytest.mark.parametrize("name", ["gpt2", "llama3", "gemma"])
def test_words_over_several_tokens_keep_their_whole_length(tok_dirs, name):
    """word_len sits on the token completing a word's first character, with the whole word's length;
    word_end on the one completing its last; next_word_len is the whole next word; a token carrying the
    space before a word counts it."""
    tok = load_tokenizer(tok_dirs[name])
    lines = ["the unquestionableness of", "hyperventilation déjà vu"]  # two words unseen in training
    enc = encode_lines(CharCounter(tok), lines, _newline_id(tok))
    p = positions(enc, 30)
    lab = position_labels(p, enc.ids == _newline_id(tok), 30)
    assert p["word_len"][p["word_len"] >= 0].tolist() == [3, 18, 2, 16, 4, 2]
    ends, e = np.flatnonzero(p["word_end"]), np.array([3, 22, 25, 42, 47, 50])  # where each word ends
    prev = np.concatenate([[0], enc.done[:-1]])
    assert len(ends) == 6 and ((prev[ends] < e) & (e <= enc.done[ends])).all()
    after = enc.done[ends] - e  # a Gemma-like token may carry the space after the word
    assert (lab["count"][ends] - after).tolist() == [3, 22, 25, 16, 21, 24]
    assert lab["next_word_len"][ends].tolist() == [18, 2, 16, 4, 2, -1]
    assert lab["line_len"][lab["is_newline"]].tolist() == [25]
    starts = np.flatnonzero(p["word_len"] >= 0)
    assert (np.diff(np.concatenate([starts, [len(enc.ids)]])) >= 3).any()  # a word of 3 tokens or more
    strings = tok.convert_ids_to_tokens(enc.ids.tolist())
    spaced = [t for t, s in enumerate(strings) if ("Ġ" in s or "▁" in s) and s.strip("Ġ▁").isascii()]
    assert spaced and all(p["chars"][t] == len(strings[t]) for t in spaced)  # "Ġ", "▁": one space each


def _newline_id(tok) -> int:
    from linebreak.corpus.external import _special_ids

    return _special_ids(tok)[0]


def _check_line_labels(lab: dict, texts: list[str], width_of: list[int]) -> None:
    """The labels every stage reads agree with the characters of the wrapped text, line by line."""
    for d, text in enumerate(texts):
        lines = text.split("\n")
        nl = np.flatnonzero(lab["is_newline"][d])
        # at each newline: the line it ends, in characters; the next word's whole length
        assert lab["line_len"][d][nl].tolist() == [len(line) for line in lines[:len(nl)]]
        nxt = [line.split()[0] if line else "" for line in lines[1:len(nl) + 1]]
        got = lab["next_word_len"][d][nl].tolist()
        if len(lines) == len(nl) + 1 and len(lines[-1].split()) <= 1:  # the document may cut its last word
            assert got[-1] >= len(nxt[-1]) or got[-1] == -1 == len(nxt[-1]) - 1
            got, nxt = got[:-1], nxt[:-1]
        assert got == [len(w) for w in nxt]
        for t in nl:  # greedy: the line fit, and the word that went to the next line did not
            if lab["next_word_len"][d][t] >= 0 and not lab["over_long"][d][t] and not lab["over_long"][d][t + 1]:
                assert lab["line_len"][d][t] <= width_of[d] < lab["line_len"][d][t] + 1 + lab["next_word_len"][d][t]
        last = np.concatenate([nl - 1, [len(lab["count"][d]) - 1]])
        assert (lab["count"][d][last[:-1]] == lab["line_len"][d][nl]).all()


@pytest.mark.parametrize("name", ["gpt2", "llama3", "gemma"])
def test_corpus_labels_follow_the_text(tok_dirs, tmp_path, name):
    """A whole corpus through generate_with_tokenizer: counts, line lengths and next-word lengths agree
    with the decoded text of every document, whatever the tokenizer."""
    src = tmp_path / "prose.txt"
    src.write_text(prose(4000, seed=7), encoding="utf-8")
    cfg = CorpusConfig(widths="20,30,45", seq_len=96, n_train=40, n_val=5, text=str(src))
    c = load_corpus(generate_with_tokenizer(cfg, tok_dirs[name], tmp_path / "c"))
    assert c.meta["external"]["char_counts"] == "offsets" and list(c.meta)[-2:] == ["stats", "fingerprint"]
    for split in ("train", "validation"):
        s = c.splits[split]
        lab = c.labels(split)
        texts = [c.tokenizer.decode(ids[1:].tolist(), clean_up_tokenization_spaces=False) for ids in s.input_ids]
        _check_line_labels(lab, texts, s.width.tolist())
        fits = ~lab["over_long"]  # lines of one word longer than the width (22 characters at width 20)
        assert (lab["count"] <= s.width[:, None])[fits].all()
        wl = c.splits[split].positions["word_len"]
        assert c.meta["stats"][split]["over_long_words"] == int((wl > s.width[:, None]).sum())
        assert ((s.input_ids == c.newline_id) == lab["is_newline"]).all()
        held = {i for i in np.unique(s.input_ids).tolist() if "\n" in c.tokenizer.decode([i])}
        assert held == {c.newline_id}  # no token but the newline holds a newline
    assert c.meta["stats"]["train"]["over_long_words"] > 0
    assert c.meta["stats"]["train"]["newlines"] == int((c.splits["train"].input_ids == c.newline_id).sum())


def test_multi_token_words_keep_next_word_len_and_the_knowable_break(tok_dirs, tmp_path):
    """With words over several tokens, next_word_len is the whole next word, and the Bayes posterior
    (linebreak.train.baselines) keeps the true width and calls a break knowable only where one follows."""
    from linebreak.train.baselines import break_prob_posterior

    src = tmp_path / "prose.txt"
    src.write_text(prose(3000, seed=11), encoding="utf-8")
    cfg = CorpusConfig(widths="25,30,35", seq_len=96, n_train=30, n_val=4, text=str(src))
    c = load_corpus(generate_with_tokenizer(cfg, tok_dirs["gpt2"], tmp_path / "c"))
    lab = c.labels("train")
    wl = c.splits["train"].positions["word_len"]
    assert (wl >= 0).sum() < ((lab["count"] > 0) & ~lab["is_newline"]).sum()  # more word tokens than words
    posterior = break_prob_posterior(lab, c.widths, c.word_length_probs)
    knowable = (posterior >= 1 - 1e-9) & lab["word_end"] & (lab["count"] > 0)
    knowable[:, -1] = False
    assert knowable.any() and lab["next_is_newline"][knowable].all()
    # the per-token labels of the old way are wrong here: the next word's first token is not the word
    s = c.splits["train"]
    old = labels_for_split(s.input_ids, s.width, c.token_lengths, c.newline_id)  # per-id token lengths
    assert (old["next_word_len"][lab["is_newline"]] != lab["next_word_len"][lab["is_newline"]]).any()
    # the old per-id labels misplace the knowable break even at word ends
    old_post = break_prob_posterior(old, c.widths, c.word_length_probs)
    old_knowable = (old_post >= 1 - 1e-9) & lab["word_end"] & (old["count"] > 0)
    old_knowable[:, -1] = False
    assert not old["next_is_newline"][old_knowable].all()


def test_newline_decisions_are_scored_at_word_ends_only(tok_dirs, tmp_path):
    from linebreak.train.baselines import newline_positions

    src = tmp_path / "prose.txt"
    src.write_text(prose(2000, seed=11), encoding="utf-8")
    cfg = CorpusConfig(widths="25,30,35", seq_len=96, n_train=10, n_val=2, text=str(src))
    lab = load_corpus(generate_with_tokenizer(cfg, tok_dirs["gpt2"], tmp_path / "c")).labels("train")
    assert not (newline_positions(lab) & ~lab["word_end"]).any()


@pytest.mark.parametrize("name,merged", [("llama3", ".Ċ"), ("gemma", ".\n")])
def test_a_newline_merged_with_punctuation_is_split_off(tok_dirs, name, merged):
    """Llama-3 and Qwen pre-tokenize ".\\n" together (a Gemma-like tokenizer without pre-tokenizer merges
    "e\\n" or ".\\n" too): such documents are encoded line by line and joined by the lone newline token, so
    the model reads the same characters and the label's newline is where the line starts."""
    tok = load_tokenizer(tok_dirs[name])
    assert merged in tok.get_vocab()
    nl = _newline_id(tok)
    lines = _lines_text(5, 25)
    counter = CharCounter(tok)
    whole, _ = counter.encode("\n".join(lines))
    assert any("\n" in tok.decode([i]) and i != nl for i in whole.tolist())  # the whole text merges
    enc = encode_lines(counter, lines, nl)
    assert enc.split_newlines > 0 and tok.decode(enc.ids.tolist()) == enc.text == "\n".join(lines)
    assert all(("\n" not in tok.decode([i])) for i in enc.ids.tolist() if i != nl)
    assert (enc.ids == nl).sum() == len(lines) - 1
    lab = position_labels(positions(enc, 25), enc.ids == nl, 25)
    _check_line_labels({k: v[None] for k, v in lab.items()}, [enc.text], [25])


def test_whitespace_merges_cannot_form(tok_dirs):
    """Tokenizers with "\\n\\n", " \\n" and "\\n  " tokens: wrapped documents have no empty lines, trailing
    spaces or indents, so those tokens never occur; every newline is the newline token."""
    gemma, llama3 = load_tokenizer(tok_dirs["gemma"]), load_tokenizer(tok_dirs["llama3"])
    assert {"\n\n", "\n▁▁"} <= set(gemma.get_vocab()) and {"ĊĊ", "ĠĊ"} <= set(llama3.get_vocab())
    for tok in (gemma, llama3):
        nl = _newline_id(tok)
        for seed in range(3):
            lines = _lines_text(seed, 30)
            enc = encode_lines(CharCounter(tok), lines, nl)
            assert (enc.ids == nl).sum() == len(lines) - 1
            assert all(("\n" not in tok.decode([i])) for i in enc.ids.tolist() if i != nl)


def test_a_prefix_space_tokenizer_that_merges_newlines_is_refused(tok_dirs):
    """A Metaspace tokenizer with a prefix space (Llama-2 shape) that also merges the newline cannot be split
    line by line (each line would gain a space): one-line refusal, never wrong counts."""
    tok = load_tokenizer(tok_dirs["llama2"])
    lines = _lines_text(5, 25)
    with pytest.raises(UserError, match="merges the newline") as e:
        encode_lines(CharCounter(tok), lines, _newline_id(tok))
    assert "\n" not in str(e.value)


LICENCE = ("Licensed under the Apache License, Version 2.0 (the License); you may not use this file except in "
           "compliance with the License. You may obtain a copy of the License at " + URL + " Unless required "
           "by applicable law or agreed to in writing, software distributed under the License is distributed on "
           "an AS IS BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the "
           "License for the specific language governing permissions and limitations under the License. ")


def test_an_over_long_url_stands_alone_marked_and_counted(tok_dirs, tmp_path):
    """A licence text with a 55-character URL at width 40: the URL stands alone on its line, its tokens are
    marked over_long (left out of the word-length histogram), the metadata counts them; ``long_words="refuse"``
    keeps the old refusal."""
    assert len(URL) == 55
    assert wrap_words(["a", "bb", "c" * 12, "d"], 5, long_words="alone") == ["a bb", "c" * 12, "d"]
    with pytest.raises(WrapError, match="shorter than the longest word"):
        wrap_words(["a", "c" * 12], 5)
    src = tmp_path / "licence.txt"
    src.write_text(LICENCE * 12, encoding="utf-8")
    cfg = CorpusConfig(widths="40", seq_len=64, n_train=20, n_val=2, text=str(src))
    with pytest.raises(UserError, match="shorter than the longest word"):
        generate_with_tokenizer(cfg, tok_dirs["gpt2"], tmp_path / "refused", long_words="refuse")
    assert not (tmp_path / "refused").exists()
    c = load_corpus(generate_with_tokenizer(cfg, tok_dirs["gpt2"], tmp_path / "c"))
    stats = c.meta["stats"]
    n_url = sum(t.count(URL[:20]) for t in ((c.path / f"{s}.txt").read_text() for s in ("train", "validation")))
    assert n_url >= 4 and sum(s["over_long_words"] for s in stats.values()) >= n_url - 2  # some may be cut
    assert max(max(map(int, s["word_length_histogram"])) for s in stats.values()) <= 40
    assert c.meta["external"]["long_words"] == "alone"
    top = 0
    for split in ("train", "validation"):
        lab, s = c.labels(split), c.splits[split]
        texts = [c.tokenizer.decode(ids[1:].tolist()) for ids in s.input_ids]
        _check_line_labels(lab, texts, s.width.tolist())
        assert stats[split]["over_long_tokens"] == int(lab["over_long"].sum())
        for d, text in enumerate(texts):
            for line_no, line in enumerate(text.split("\n")):
                on_line = (lab["line_index"][d] == line_no) & ~lab["is_newline"][d]
                on_line[0] = False  # <bos>
                if line.startswith("https:"):  # alone on its line (or cut by the document's end), marked
                    assert URL.startswith(line) and lab["over_long"][d][on_line].all()
                else:
                    assert not lab["over_long"][d][on_line].any() and len(line) <= 40
            ends = lab["is_newline"][d] & (lab["line_len"][d] > 40)
            assert (lab["line_len"][d][ends] == 55).all() and lab["over_long"][d][ends].all()
        top = max(top, int(lab["count"].max()))
    assert top == 55


def test_text_is_nfc_and_counting_by_decoding_gives_the_same_corpus(tok_dirs, tmp_path):
    """Decomposed accents (NFD) are counted as the letters they make (NFC); counting by decoding prefixes
    (tokenizers without offsets) writes the same corpus as counting from offsets."""
    src = tmp_path / "prose.txt"
    src.write_text(unicodedata.normalize("NFD", prose(1500, seed=4)), encoding="utf-8")
    cfg = CorpusConfig(widths="20,30", seq_len=64, n_train=8, n_val=2, text=str(src))
    a = load_corpus(generate_with_tokenizer(cfg, tok_dirs["gemma"], tmp_path / "a"))
    b = load_corpus(generate_with_tokenizer(cfg, tok_dirs["gemma"], tmp_path / "b", count_method="decoding"))
    assert b.meta["external"]["char_counts"] == "decoding" and a.fingerprint == b.fingerprint
    for split in ("train", "validation"):
        pa, pb = a.splits[split].positions, b.splits[split].positions
        assert all((pa[k] == pb[k]).all() for k in POSITION_KEYS)
    text = (a.path / "train.txt").read_text(encoding="utf-8")
    assert "é" in text and unicodedata.normalize("NFC", text) == text


def test_a_tokenizer_without_a_newline_token_is_one_line_error(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    core = Tokenizer(models.WordLevel({"<bos>": 0, "<unk>": 1, "a": 2, "b": 3}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    _fast(core, "<bos>", "<bos>", unk_token="<unk>").save_pretrained(tmp_path / "tok")
    src = tmp_path / "t.txt"
    src.write_text("a b " * 200)
    with pytest.raises(UserError, match="newline") as e:
        generate_with_tokenizer(CorpusConfig(widths="10", seq_len=32, text=str(src)), tmp_path / "tok", tmp_path / "c")
    assert "\n" not in str(e.value) and not (tmp_path / "c").exists()
    with pytest.raises(UserError, match="long_words"):
        generate_with_tokenizer(CorpusConfig(widths="10", text=str(src)), tmp_path / "tok", tmp_path / "c",
                                long_words="split")


@pytest.fixture(scope="module")
def gpt2_model_dir(tok_dirs, tmp_path_factory):
    """A tiny randomly initialised GPT-2 saved beside the GPT-2-shaped tokenizer, as a model folder is."""
    import shutil

    from transformers import GPT2Config, GPT2LMHeadModel

    out = tmp_path_factory.mktemp("model") / "gpt2"
    shutil.copytree(tok_dirs["gpt2"], out)
    tok = load_tokenizer(out)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(out)
    return out


def test_every_stage_reads_the_per_position_labels(gpt2_model_dir, tmp_path):
    """End to end: a model folder (tokenizer + tiny GPT-2), its corpus, and capture's labels."""
    from linebreak.capture.collect import capture
    from linebreak.capture.config import CaptureConfig
    from linebreak.hooks.load import load_model

    src = tmp_path / "prose.txt"
    src.write_text(prose(2000, seed=2) + " " + URL + " " + prose(500, seed=3), encoding="utf-8")
    cfg = CorpusConfig(widths="20,40", seq_len=64, n_train=12, n_val=3, text=str(src))
    c = load_corpus(generate_with_tokenizer(cfg, gpt2_model_dir, tmp_path / "c"))
    s = c.splits["validation"]  # the labels from the saved per-position arrays, built here by hand
    mine = labels_for_positions(s.input_ids, s.width, s.positions, c.newline_id)
    model, _ = load_model(gpt2_model_dir)
    acts = capture(model, c, CaptureConfig(sites=("resid_post",), pattern_docs=0), progress=False)
    for k in mine:
        assert k in acts.labels and (acts.labels[k] == mine[k].ravel()).all(), k
    lab = c.labels("validation")
    assert all((lab[k] == mine[k]).all() for k in mine)
