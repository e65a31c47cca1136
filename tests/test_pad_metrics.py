"""The pad-length Bayes reference against the generator it is derived from, the pad metrics by row of a
trained table model, and the pad loss weight (1 = the plain loss)."""

import dataclasses

import numpy as np
import pytest

from linebreak.corpus import CorpusConfig, generate_corpus, load_corpus
from linebreak.corpus import tables as tab
from linebreak.io import UserError
from linebreak.presets import TRAIN
from linebreak.train.baselines import pad_length_bayes
from linebreak.train.config import check_settings
from linebreak.train.loop import train
from linebreak.train.result import TrainMetrics

BASE = CorpusConfig(layout="table", seq_len=128, n_train=4, n_val=600, vocab_size=60, max_word_len=6,
                    table_cols=(3, 4, 5, 6), col_gap=(8, 9, 10, 11, 12), cell_words=2)


def bayes(corpus):
    s = corpus.splits["validation"]
    lab = corpus.labels("validation")
    target = np.zeros_like(s.input_ids)
    target[:, :-1] = s.input_ids[:, 1:]
    q, top = pad_length_bayes(lab, s.layout["col_starts"], corpus.token_lengths[target], corpus.table,
                              corpus.word_length_probs)
    return lab, s, q, top


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return load_corpus(generate_corpus(BASE, tmp_path_factory.mktemp("p") / "c"))


def test_row0_gap_posterior_matches_the_generator(plain):
    """Empirical P(column width | cell content length) on row 0 against tables.gap_posterior."""
    lab, s, q, top = bayes(plain)
    at = lab["next_is_pad"] & (lab["line_index"] == 0)
    d, t = np.nonzero(at)
    starts = s.layout["col_starts"]
    c = lab["col_index"][d, t]
    L = lab["count"][d, t] - starts[d, c]
    g = starts[d, c + 1] - starts[d, c]
    gaps = sorted(BASE.col_gap)
    content = tab.content_length_probs(plain.word_length_probs, BASE.cell_words, max(gaps))
    tested = 0
    for length in np.unique(L):
        sel = L == length
        if sel.sum() < 150:
            continue
        emp = np.array([(g[sel] == v).mean() for v in gaps])
        np.testing.assert_allclose(emp, tab.gap_posterior(int(length), gaps, content), atol=0.09)
        tested += 1
    assert tested >= 3
    assert (q[at] > 0).all() and (q[at] < 1).any()  # the true length is always possible, rarely certain


def test_rows_after_the_first_are_determined_without_empty_cells(plain):
    lab, _, q, top = bayes(plain)
    later = lab["next_is_pad"] & (lab["line_index"] >= 1)
    assert later.sum() > 1000 and (q[later] == 1).all() and top[later].all()


def test_rows_after_the_first_are_determined_with_overflowing_cells(tmp_path):
    """A pad after a cell that overflows its column runs to the first start it can reach: still certain."""
    c = load_corpus(generate_corpus(dataclasses.replace(BASE, overflow=0.5, n_val=200), tmp_path / "o"))
    lab, s, q, top = bayes(c)
    later = lab["next_is_pad"] & (lab["line_index"] >= 1)
    assert c.meta["stats"]["validation"]["overflowing_cells"] > 100
    assert later.sum() > 500 and (q[later] == 1).all() and top[later].all()


def test_skip_probability_is_calibrated(tmp_path):
    """With half the documents shifted, the Bayes probability of "the pad skips no cell" is calibrated."""
    c = load_corpus(generate_corpus(dataclasses.replace(BASE, empty_cells=0.5, n_val=800), tmp_path / "s"))
    lab, s, q, _ = bayes(c)
    later = lab["next_is_pad"] & (lab["line_index"] >= 1)
    lengths = c.token_lengths[np.concatenate([s.input_ids[:, 1:], s.input_ids[:, :1]], 1)]
    no_skip = (lab["count"] + lengths == lab["next_col"])[later]
    p_no_skip = np.where(no_skip, q[later], 1 - q[later])
    assert (q[later] > 0).all()
    unsure = (p_no_skip > 0.02) & (p_no_skip < 0.98)
    assert unsure.sum() > 500
    for lo, hi in ((0.0, 0.5), (0.5, 0.8), (0.8, 1.0)):
        b = unsure & (p_no_skip >= lo) & (p_no_skip < hi)
        if b.sum() >= 100:
            assert abs(no_skip[b].mean() - p_no_skip[b].mean()) < 0.06, (lo, hi)
    # outside the uncertain ones the reference is never wrong
    assert no_skip[p_no_skip >= 0.98].all() and not no_skip[p_no_skip <= 0.02].any()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    p = TRAIN["table-tiny"]
    corpus = load_corpus(generate_corpus(p.data, tmp_path_factory.mktemp("c") / "c"))
    cfg = dataclasses.replace(p.train, optim=dataclasses.replace(p.train.optim, pad_loss_weight=3.0))
    return train(cfg, corpus, tmp_path_factory.mktemp("m") / "m")


def test_table_model_pad_metrics_by_row(run):
    m, first = run.metrics, run.history[0]
    assert m.pad_positions_row0 > 0 and m.pad_positions_rows1 > m.pad_positions_row0
    assert m.pad_ce_bayes_rows1 == 0.0 and m.pad_acc_bayes_rows1 == 1.0
    assert 0 < m.pad_ce_bayes_row0 < np.log(7) and m.pad_acc_bayes_row0 < 1.0  # 7 widths: at most log 7
    assert m.pad_ce_rows1 < first["pad_ce_rows1"] - 0.2  # it learns something about the pads
    assert m.pad_acc_vocab_rows1 <= m.pad_acc_rows1 + 1e-9
    assert m.newline_ce is None or np.isnan(m.newline_ce)  # tables only: no prose newline to score
    back = TrainMetrics.from_json(m.to_json())
    assert back.pad_acc_rows1 == m.pad_acc_rows1 and back.pad_positions_row0 == m.pad_positions_row0


def test_pad_loss_weight_one_is_the_plain_loss_and_weighs_pads():
    import torch

    from linebreak.train.loop import train_step

    torch.manual_seed(0)
    emb = torch.nn.Embedding(7, 7)

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.e = emb

        def forward(self, input_ids):
            return type("O", (), {"logits": self.e(input_ids)})()

    x = torch.tensor([[0, 3, 5, 6, 2, 5]])
    losses = []
    for w in (None, torch.ones(7), torch.tensor([1, 1, 1, 1, 1, 4.0, 1])):
        model = M()
        state = {k: v.clone() for k, v in model.state_dict().items()}
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        losses.append(train_step(model, opt, x, 0.0, 1.0, w))
        model.load_state_dict(state)
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(emb(x)[0, :-1], x[0, 1:], reduction="none")
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert losses[2] == pytest.approx(float((ce * torch.tensor([1, 4.0, 1, 1, 4.0])).mean()), rel=1e-6)


def test_pad_loss_weight_is_checked(tmp_path):
    p = TRAIN["tiny"]
    bad = dataclasses.replace(p.train, optim=dataclasses.replace(p.train.optim, pad_loss_weight=0.0))
    with pytest.raises(UserError, match="pad_loss_weight"):
        check_settings(bad, 64)
    prose = load_corpus(generate_corpus(dataclasses.replace(p.data, n_train=8, n_val=4), tmp_path / "c"))
    weighted = dataclasses.replace(p.train, optim=dataclasses.replace(p.train.optim, pad_loss_weight=2.0, steps=1))
    with pytest.raises(UserError, match="has none"):
        train(weighted, prose, tmp_path / "m")
