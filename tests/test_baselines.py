"""The Bayes references: the closed form against simulation, and the posterior's consistency with the data."""

import numpy as np

from linebreak.corpus import CorpusConfig, generate_corpus, load_corpus
from linebreak.train.baselines import binary_ce, break_prob_oracle, break_prob_posterior, newline_positions


def test_oracle_matches_simulated_wrapping():
    probs = np.array([0, 0.1, 0.2, 0.3, 0.25, 0.15])  # lengths 1..5
    rng = np.random.default_rng(0)
    lengths = rng.choice(len(probs), size=200_000, p=probs)
    for r in range(0, 8):
        want = np.mean(1 + lengths > r)  # the next word plus its space does not fit
        assert abs(break_prob_oracle(np.array([r]), probs)[0] - want) < 0.005  # 200k draws: SE <= 0.0011
    assert break_prob_oracle(np.array([-3, 0, 1, 6, 50]), probs).tolist() == [1, 1, 1, 0, 0]


def test_posterior_is_consistent_and_between_oracle_and_constant(tmp_path):
    cfg = CorpusConfig(widths="20:40", seq_len=128, n_train=4, n_val=64, vocab_size=100, max_word_len=8)
    c = load_corpus(generate_corpus(cfg, tmp_path / "c"))
    labels = c.labels("validation")
    mask = newline_positions(labels)
    y = labels["next_is_newline"][mask]
    oracle = break_prob_oracle(labels["remaining"], c.word_length_probs)[mask]
    post = break_prob_posterior(labels, c.widths, c.word_length_probs)[mask]
    assert not ((post == 1) & ~y).any() and not ((post == 0) & y).any()  # never certain and wrong
    ce_o, ce_p, ce_c = binary_ce(oracle, y), binary_ce(post, y), binary_ce(np.full(len(y), y.mean()), y)
    assert ce_o < ce_p < ce_c
    # with a single width the posterior knows the width from the start: it equals the oracle
    one = load_corpus(generate_corpus(CorpusConfig(**{**cfg.__dict__, "widths": "30"}), tmp_path / "one"))
    lab = one.labels("validation")
    np.testing.assert_allclose(break_prob_posterior(lab, one.widths, one.word_length_probs),
                               break_prob_oracle(lab["remaining"], one.word_length_probs))


def test_filled_corpus_lines_reach_the_width_and_its_references_are_exact(tmp_path):
    """``fill``: every finished line ends at the width, or one short of it where no word fits in the one
    character left (a word of every length 1..8 exists); the oracle
    is then certain and right at every position, and the posterior never rules out the true width."""
    cfg = CorpusConfig(widths="20:40", seq_len=128, n_train=4, n_val=64, vocab_size=100, max_word_len=8,
                       fill=True)
    c = load_corpus(generate_corpus(cfg, tmp_path / "c"))
    assert c.fill
    lab = c.labels("validation")
    nl = lab["is_newline"]
    short = lab["width"][nl] - lab["line_len"][nl]
    assert set(short.tolist()) == {0, 1}
    mask = newline_positions(lab)
    y = lab["next_is_newline"][mask]
    oracle = break_prob_oracle(lab["remaining"], c.word_length_probs, fill=True)[mask]
    np.testing.assert_array_equal(oracle, y.astype(float))
    post = break_prob_posterior(lab, c.widths, c.word_length_probs, fill=True)[mask]
    assert not ((post == 1) & ~y).any() and not ((post == 0) & y).any()
    # after a line of length k only W = k (filled) or W = k + 1 (one character left) remain: the posterior is
    # certain, or split evenly between the two, and mostly agrees with the oracle
    later = (lab["line_index"] >= 1)[mask]
    assert set(np.unique(post[later]).tolist()) <= {0.0, 0.5, 1.0}
    assert (post[later] == oracle[later]).mean() > 0.98
    # the greedy references do not describe a filled corpus: they are wrong somewhere
    assert (break_prob_oracle(lab["remaining"], c.word_length_probs)[mask] != y).any()


def test_fill_oracle_matches_simulated_filled_wrapping():
    """With a gap in the lengths (no word of 3 characters) a line can end short of the width; the closed
    form matches a simulation of the filled wrap."""
    from linebreak.corpus.wrap import wrap_ids

    probs = np.array([0, 0.2, 0.3, 0, 0.3, 0.2])  # lengths 1, 2, 4, 5
    rng = np.random.default_rng(0)
    lengths = np.array([1, 2, 4, 5])
    ids = rng.choice(4, size=60_000, p=probs[lengths])
    width = 13

    def filler(n):
        return int(np.flatnonzero(lengths == n)[0]) if n in (1, 2, 4, 5) else None
    toks, _ = wrap_ids(ids, lengths, width, 40_000, 0, 4, 8, filler)
    tok_len = np.concatenate([lengths, lengths + 1, [0]])
    from linebreak.corpus.labels import token_labels
    lab = token_labels(tok_len[toks], toks == 8, width)
    m = ~lab["is_newline"][:-1]
    r, y = lab["remaining"][:-1][m], lab["next_is_newline"][:-1][m]
    assert lab["line_len"][lab["is_newline"]].max() == width
    for v in np.unique(r):
        want = y[r == v].mean()
        assert abs(break_prob_oracle(np.array([v]), probs, fill=True)[0] - want) < 0.02, v
    # short lines: r = 1 (no room for a word) and r = 4 (no word of 3 characters)
    assert set(lab["line_len"][lab["is_newline"]].tolist()) == {width, width - 1, width - 4}
