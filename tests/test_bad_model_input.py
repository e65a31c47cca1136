"""Bad model folders and bad prose, through the command line: one line on stderr, exit status 2, nothing written.

A model folder without weights or without its config, an architecture linebreak cannot read, a tokenizer
without a newline token of its own, a text too short to fill the documents at the requested widths. Tiny models
are built from their config classes and tokenizers trained here (nothing is downloaded).
"""

import pytest
import torch
from test_external import byte_bpe, prose

VOCAB_TEXT = prose(300)



@pytest.fixture(scope="module")
def tokenizer():
    return byte_bpe()


def _save(model_cfg, tok, path):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(model_cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def gpt2_dir(tokenizer, tmp_path_factory):
    from transformers import GPT2Config

    cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=2, n_head=4)
    return _save(cfg, tokenizer, tmp_path_factory.mktemp("bad") / "gpt2")


def _one_line_error(rc, err, *, contains):
    assert rc == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert contains in err, err


def _capture(cli, model, corpus_dir, out):
    return cli("capture", "--model", model, "--corpus", corpus_dir, "--out", out, "--max-docs", "2")


def test_a_folder_without_weights(gpt2_dir, corpus_dir, tmp_path, cli):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(gpt2_dir, bare)
    for f in bare.glob("*.safetensors"):
        f.unlink()
    rc, _, err = _capture(cli, bare, corpus_dir, tmp_path / "out")
    _one_line_error(rc, err, contains="no weights in")
    assert not (tmp_path / "out").exists()


def test_a_folder_without_config(gpt2_dir, corpus_dir, tmp_path, cli):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(gpt2_dir, bare)
    (bare / "config.json").unlink()
    for command in ("capture", "qk", "causal"):
        rc, _, err = cli(command, "--model", bare, "--corpus", corpus_dir, "--out", tmp_path / "out")
        _one_line_error(rc, err, contains="no config.json")
    assert not (tmp_path / "out").exists()


def test_an_unsupported_architecture_is_refused_before_its_weights(tokenizer, corpus_dir, tmp_path, cli):
    from transformers import OPTConfig

    opt = _save(OPTConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, ffn_dim=64,
                          num_attention_heads=4, word_embed_proj_dim=32, max_position_embeddings=64),
                tokenizer, tmp_path / "opt")
    rc, _, err = _capture(cli, opt, corpus_dir, tmp_path / "out")
    _one_line_error(rc, err, contains="unsupported model type 'opt'")
    (tmp_path / "prose.txt").write_text(VOCAB_TEXT)
    rc, _, err = cli("study", "--model", opt, "--text", tmp_path / "prose.txt", "--out", tmp_path / "study")
    _one_line_error(rc, err, contains="unsupported model type 'opt'")
    assert not (tmp_path / "out").exists() and not (tmp_path / "study").exists()


def test_a_tokenizer_without_a_newline_token(tmp_path, cli):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, PreTrainedTokenizerFast

    words = sorted(set(VOCAB_TEXT.split()))
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["<unk>", "<bos>", *words])}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()  # drops the newline: it never becomes a token
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", unk_token="<unk>")
    model = _save(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=1, n_head=4), tok,
                  tmp_path / "m")
    (tmp_path / "prose.txt").write_text(VOCAB_TEXT)
    rc, _, err = cli("study", "--model", model, "--text", tmp_path / "prose.txt", "--out", tmp_path / "study")
    _one_line_error(rc, err, contains="does not keep the newline as a token of its own")
    assert not (tmp_path / "study").exists()


def test_a_text_too_short_for_the_widths(gpt2_dir, tmp_path, cli):
    """40 words at widths 20 and 40 do not fill two documents of 256 tokens: refused in the corpus stage, which
    builds its folder in a staging folder, so no corpus (and no stage record) is left behind."""
    (tmp_path / "short.txt").write_text(prose(40))
    out = tmp_path / "study"
    rc, _, err = cli("study", "--model", gpt2_dir, "--text", tmp_path / "short.txt", "--widths", "20,40",
                     "--out", out)
    _one_line_error(rc, err, contains="text too short for widths 20-40")
    assert not (out / "corpus" / "metadata.json").exists() and not (out / "corpus" / "stage.json").exists()
    assert not any(p.is_file() for p in out.rglob("*")) if out.exists() else True
