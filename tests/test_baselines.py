"""The Bayes references: the closed form against simulation, and the posterior's consistency with the data."""

import numpy as np

from linebreak.baselines import binary_ce, break_prob_oracle, break_prob_posterior, newline_positions
from linebreak.corpus import CorpusConfig, generate_corpus, load_corpus


def test_oracle_matches_simulated_wrapping():
    probs = np.array([0, 0.1, 0.2, 0.3, 0.25, 0.15])  # lengths 1..5
    rng = np.random.default_rng(0)
    lengths = rng.choice(len(probs), size=200_000, p=probs)
    for r in range(0, 8):
        want = np.mean(1 + lengths > r)  # the next word plus its space does not fit
        assert abs(break_prob_oracle(np.array([r]), probs)[0] - want) < 0.005
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
