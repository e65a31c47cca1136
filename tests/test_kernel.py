"""The data's similarity over counts (linebreak.probe.kernel): its spectrum narrows and spreads with the match
the task asks for, a six-dimensional truncation of a narrow one rings, and it reads a real corpus."""

import numpy as np
import pytest

from linebreak.io import UserError
from linebreak.probe.kernel import TaskKernel, corpus_kernel, count_kernel


def planted(kind: str, n: int = 400_000, seed: int = 0) -> TaskKernel:
    """Counts 0..99 in documents of width 40..139; the next token (0 or 1) depends on the distance d = width -
    count through an exact match (d == 5), a Gaussian bump around it (sd 3 or 8), or a threshold (a ramp: 1 once
    the count is within 20 of the width)."""
    rng = np.random.default_rng(seed)
    c, g = rng.integers(0, 100, n), rng.integers(40, 140, n)
    d = g - c
    p = {"match": d == 5, "bump3": np.exp(-(d - 5) ** 2 / 18.0), "bump8": np.exp(-(d - 5) ** 2 / 128.0),
         "ramp": d <= 20}[kind]
    nxt = (rng.random(n) < p).astype(np.int64)
    return count_kernel(nxt, c, 2, g, "width")


@pytest.fixture(scope="module")
def kernels():
    return {k: planted(k) for k in ("match", "bump3", "bump8", "ramp")}


def test_narrower_match_spreads_the_spectrum(kernels):
    """The paper's section 7: the narrower the similarity, the more dimensions carry it."""
    pc1 = [kernels[k].pc1 for k in ("match", "bump3", "bump8", "ramp")]
    assert pc1 == sorted(pc1) and pc1[-1] - pc1[0] > 0.5, pc1
    # (dim95 is not monotone: a threshold's spectrum decays only as 1/k^2, so its tail needs ~9 PCs for 95 %)
    assert kernels["match"].dim95 > 3 * max(kernels[k].dim95 for k in ("bump8", "ramp"))
    assert kernels["match"].peak_width < kernels["bump3"].peak_width < kernels["ramp"].peak_width


def test_truncating_a_narrow_similarity_rings_and_a_ramp_does_not(kernels):
    # an exact match is no curve at all: consecutive counts are unalike, so the gate stays closed
    assert not kernels["match"].ringing["gate_open"] and "not smooth" in kernels["match"].ringing["reason"]
    # six dimensions of a narrow bump: a low-pass of a peak, positive, negative, positive again
    assert kernels["bump3"].ringing_rank6["gate_open"] and kernels["bump3"].ringing_rank6["sign_changes"] >= 2
    # a threshold is a ramp: one sign change however it is truncated
    assert kernels["ramp"].ringing["sign_changes"] == kernels["ramp"].ringing_rank6["sign_changes"] == 1


def test_pooling_over_widths_hides_the_comparison():
    """Without the width, a threshold in width - count is a smooth function of the count alone: one mode."""
    rng = np.random.default_rng(1)
    c, g = rng.integers(0, 100, 200_000), rng.integers(40, 140, 200_000)
    pooled = count_kernel((c >= g - 20).astype(np.int64), c, 2)
    assert pooled.given is None and pooled.pc1 > 0.9 > planted("ramp").pc1


def test_result_round_trips_and_bad_rows_are_refused(kernels):
    k = kernels["bump8"]
    assert TaskKernel.from_json(k.to_json()) == k
    with pytest.raises(UserError, match="inside the vocabulary"):
        count_kernel(np.array([0, 5]), np.array([1, 2]), 2)
    with pytest.raises(UserError, match="one next token"):
        count_kernel(np.array([0]), np.array([1, 2]), 2)


def test_corpus_kernel_reads_a_wrapped_corpus(tmp_path):
    from linebreak.corpus import CorpusConfig, generate_corpus, load_corpus

    generate_corpus(CorpusConfig(widths=(20, 30, 40), seq_len=128, n_train=300, n_val=8, vocab_size=60),
                    tmp_path / "c")
    corpus = load_corpus(tmp_path / "c")
    a, b = corpus_kernel(corpus, given="width"), corpus_kernel(corpus, given="width")
    assert a == b  # same corpus, same numbers
    assert a.counts == list(range(a.counts[0], a.counts[-1] + 1)) and len(a.counts) >= 10
    assert 0 < a.pc1 <= a.top6 <= 1 and a.n_tokens > 1000
    pooled = corpus_kernel(corpus, given=None)
    assert pooled.given is None and pooled.pc1 != a.pc1
    with pytest.raises(UserError, match="no label 'nope'"):
        corpus_kernel(corpus, given="nope")


def test_kernel_spectrum_script(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from linebreak.corpus import CorpusConfig, generate_corpus

    generate_corpus(CorpusConfig(widths=(20, 30, 40), seq_len=128, n_train=300, n_val=8, vocab_size=60),
                    tmp_path / "c")
    script = [sys.executable, str(Path(__file__).parents[1] / "scripts" / "kernel_spectrum.py")]
    out = subprocess.run(script + [str(tmp_path / "c"), "--out", str(tmp_path / "k.json")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    k = TaskKernel.load(tmp_path / "k.json")
    assert f"| task | {k.pc1:.3f} | {k.top6:.3f} |" in out.stdout
    assert json.loads((tmp_path / "k.json").read_text())["format"] == "linebreak-kernel/1"
    bad = subprocess.run(script + [str(tmp_path / "c"), "--given", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "no label 'nope'" in bad.stderr
