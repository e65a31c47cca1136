"""Test-wide settings: offline, single-threaded torch, a writable numba cache, non-interactive plots."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".numba_cache"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(int(os.environ.get("LINEBREAK_TEST_THREADS", "2")))
    yield


@pytest.fixture
def cli():
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from linebreak.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main([str(a) for a in argv])
            except SystemExit as e:  # argparse errors
                rc = e.code if isinstance(e.code, int) else 1
        return rc, out.getvalue(), err.getvalue()

    return run


# ---- a small wrapped corpus, made once per test module (tests/test_capture.py, test_device.py, ...)
@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    from linebreak.corpus.store import CorpusConfig, generate_corpus

    out = tmp_path_factory.mktemp("corpus") / "corpus"
    generate_corpus(CorpusConfig(widths="12:24", seq_len=48, n_train=8, n_val=12, vocab_size=20,
                                 max_word_len=6), out)
    return out


@pytest.fixture(scope="module")
def corpus(corpus_dir):
    from linebreak.corpus.store import load_corpus

    return load_corpus(corpus_dir)


# ---- a tiny newline model trained once per test session, and its qk and causal results
# (tests/test_qk_model.py, tests/test_causal.py)
@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    from linebreak.corpus.store import generate_corpus, load_corpus
    from linebreak.presets import TRAIN as PRESETS
    from linebreak.train.loop import train

    root = tmp_path_factory.mktemp("qk")
    p = PRESETS["tiny"]
    generate_corpus(p.data, root / "corpus")
    corpus = load_corpus(root / "corpus")
    cfg = dataclasses.replace(p.train, optim=dataclasses.replace(p.train.optim, steps=300, eval_every=300))
    res = train(cfg, corpus, root / "model")
    return root, res.model.eval(), corpus


@pytest.fixture(scope="session")
def qk_result(trained):
    from linebreak.presets import QK as QK_PRESETS
    from linebreak.qk.analysis import qk_analysis

    _, model, corpus = trained
    return qk_analysis(model, corpus, QK_PRESETS["tiny"], tokenizer=corpus.tokenizer)


@pytest.fixture(scope="session")
def causal_result(trained, qk_result):
    from linebreak.causal.analysis import causal_checks
    from linebreak.presets import CAUSAL as CAUSAL_PRESETS

    _, model, corpus = trained
    return causal_checks(model, corpus, qk_result, CAUSAL_PRESETS["tiny"], tokenizer=corpus.tokenizer)


def finite_tree_paths(x, path="") -> list[str]:
    """Paths of non-finite numbers in a JSON tree (null is allowed: it means 'not defined')."""
    if isinstance(x, dict):
        return [p for k, v in x.items() for p in finite_tree_paths(v, f"{path}.{k}")]
    if isinstance(x, list):
        return [p for i, v in enumerate(x) for p in finite_tree_paths(v, f"{path}[{i}]")]
    if isinstance(x, float) and not np.isfinite(x):
        return [path]
    return []


@pytest.fixture
def finite_tree():
    """Paths of non-finite numbers in a JSON tree."""
    return finite_tree_paths


# ---- a table-tiny corpus and a model trained on it for 30 steps, made once per test session
# (tests/test_key_shift.py, tests/test_key_track.py: they read what its heads compute, not how well)
@pytest.fixture(scope="session")
def brief_table(tmp_path_factory):
    """``(corpus, (model, tokenizer), model folder)``."""
    from linebreak.corpus.store import generate_corpus, load_corpus
    from linebreak.hooks.load import load_model
    from linebreak.presets import TRAIN as PRESETS
    from linebreak.train.loop import train

    root = tmp_path_factory.mktemp("brief-table")
    corpus = load_corpus(generate_corpus(PRESETS["table-tiny"].data, root / "corpus"))
    p = PRESETS["table-tiny"]
    cfg = dataclasses.replace(p.train, optim=dataclasses.replace(p.train.optim, steps=30, eval_every=30))
    train(cfg, corpus, root / "model")
    return corpus, load_model(root / "model"), root / "model"
