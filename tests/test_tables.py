"""Column-aligned table corpora: the layout, pads that align characters (not tokens), the table labels, the
empty-cell guarantee, cells that overflow their column (tab stops), the mixture with prose, the tokenizer round
trip, determinism and bad input."""

import dataclasses

import numpy as np
import pytest

from linebreak.corpus import CorpusConfig, generate_corpus, load_corpus
from linebreak.corpus.tokenizer import MIN_PAD, build_tokenizer
from linebreak.io import UserError

TABLE = CorpusConfig(layout="table", seq_len=160, n_train=40, n_val=40, vocab_size=60, max_word_len=6,
                     table_cols=(3, 4, 5), col_gap=(10, 11, 12, 13, 14), cell_words=3)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return load_corpus(generate_corpus(TABLE, tmp_path_factory.mktemp("t") / "c"))


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    cfg = dataclasses.replace(TABLE, empty_cells=1.0, table_cols=(3, 4, 5, 6), seed=1)
    return load_corpus(generate_corpus(cfg, tmp_path_factory.mktemp("s") / "c"))


@pytest.fixture(scope="module")
def overflowing(tmp_path_factory):
    cfg = dataclasses.replace(TABLE, overflow=0.5, table_cols=(4, 5, 6), seed=2)
    return load_corpus(generate_corpus(cfg, tmp_path_factory.mktemp("o") / "c"))


def rows_of(lab, d):
    """Per complete row of document d: the (token position, column) of its cell-start tokens."""
    out, row = [], []
    for t in range(lab["count"].shape[1]):
        if lab["is_newline"][d, t]:
            out.append(row)
            row = []
        elif lab["cell_start"][d, t]:
            row.append((t, int(lab["col_index"][d, t])))
    return out


def test_pads_bring_the_count_to_the_column_starts(plain):
    lab, s = plain.labels("validation"), plain.splits["validation"]
    lengths = plain.token_lengths[s.input_ids]
    for d in range(len(s.width)):
        starts = s.layout["col_starts"][d][s.layout["col_starts"][d] >= 0]
        assert 3 <= len(starts) <= 5 and starts[0] == 0
        assert set(np.diff(starts).tolist()) <= set(TABLE.col_gap)
        pads = np.flatnonzero(lab["is_pad"][d])
        assert len(pads) and (lengths[d, pads] >= 2).all()
        # after a pad the count is a column start, and the pad's length was next_col - count before it
        assert np.isin(lab["count"][d, pads], starts).all()
        np.testing.assert_array_equal(lab["next_col"][d, pads - 1] - lab["count"][d, pads - 1], lengths[d, pads])
        assert lab["next_is_pad"][d, pads - 1].all()
        # every cell starts at its column's start; no row is longer than the width
        cells = lab["cell_start"][d]
        np.testing.assert_array_equal(lab["count"][d, cells] - lengths[d, cells], starts[lab["col_index"][d, cells]])
        assert lab["count"][d].max() <= s.width[d] - 2
        np.testing.assert_array_equal(lab["pad_determined"][d], lab["is_pad"][d] & (lab["line_index"][d] >= 1))


def test_only_character_columns_align_not_token_offsets(plain):
    """The token distance from a cell to the same column in the row above varies; its character column does not."""
    lab, s = plain.labels("validation"), plain.splits["validation"]
    lengths = plain.token_lengths[s.input_ids]
    offsets = []
    for d in range(len(s.width)):
        rows = rows_of(lab, d)
        for above, row in zip(rows, rows[1:]):
            assert [c for _, c in row] == [c for _, c in above]  # no empty cells: every column in every row
            for (t, _), (u, _) in zip(row, above):
                assert lab["count"][d, t] - lengths[d, t] == lab["count"][d, u] - lengths[d, u]
                offsets.append(t - u)
    offsets = np.array(offsets)
    assert len(offsets) > 200 and offsets.std() > 1.0 and len(np.unique(offsets)) >= 6


def test_cell_index_is_the_column_without_empty_cells(plain):
    lab = plain.labels("validation")
    real = lab["col_index"] >= 0
    np.testing.assert_array_equal(lab["cell_index"], lab["col_index"])
    assert (lab["cell_index"][real] >= 0).all() and (lab["cell_index"][~real] == -1).all()


def test_cell_index_counts_the_written_cells(shifted):
    """In a shifted document the j-th written cell of a row is cell_index j, whatever column it sits in; a pad
    carries the index of the cell it closes, and the index restarts on every row."""
    lab = shifted.labels("validation")
    for d in range(lab["count"].shape[0]):
        n, pads = 0, 0
        for t in range(1, lab["count"].shape[1]):
            if lab["is_newline"][d, t]:
                assert lab["cell_index"][d, t] == -1
                n, pads = 0, 0
                continue
            if lab["cell_start"][d, t]:
                assert lab["cell_index"][d, t] == n
                n += 1
            assert lab["cell_index"][d, t] == pads
            pads += int(lab["is_pad"][d, t])
    differs = (lab["cell_index"] != lab["col_index"]) & (lab["col_index"] >= 0)
    assert differs.any() and not differs[lab["line_index"] == 0].any()  # row 0 is full


def test_ordinal_and_count_keys_disagree_in_every_row(shifted):
    lab, s = shifted.labels("validation"), shifted.splits["validation"]
    assert s.layout["shifted"].all()
    checked = 0
    for d in range(len(s.width)):
        n_cols = int((s.layout["col_starts"][d] >= 0).sum())
        rows = [[c for _, c in r] for r in rows_of(lab, d)]
        assert rows[0] == list(range(n_cols))  # row 0 shows the whole layout
        for above, row in zip(rows, rows[1:]):
            empty = sorted(set(range(n_cols)) - set(row))
            assert len(empty) <= 1 and all(0 < e < n_cols - 1 for e in empty)  # at most one, interior
            assert any(a != b for a, b in zip(row, above))  # the j-th cells sit in different columns
            checked += 1
    assert checked > 100
    assert not lab["pad_determined"].any()


def test_overflowing_cells_run_on_to_the_first_start_a_pad_can_reach(overflowing):
    """Tab stops: every pad ends at the first column start at least MIN_PAD past the content, whether the cell
    fits its column or not; cells overflow only after row 0, and then the j-th cell of a row sits in another
    column than the row above's; the corpus's count of overflowing cells is the one read off the rows here."""
    lab, s = overflowing.labels("validation"), overflowing.splits["validation"]
    lengths = overflowing.token_lengths[s.input_ids]
    found = beyond_a_width = 0
    for d in range(len(s.width)):
        starts = s.layout["col_starts"][d][s.layout["col_starts"][d] >= 0]
        pads = np.flatnonzero(lab["is_pad"][d])
        end, before = lab["count"][d, pads], lab["count"][d, pads - 1]
        first_reachable = starts[np.searchsorted(starts, before + MIN_PAD)]
        np.testing.assert_array_equal(end, first_reachable)
        np.testing.assert_array_equal(lab["next_col"][d, pads - 1] - before, lengths[d, pads])
        cells = np.flatnonzero(lab["cell_start"][d])
        np.testing.assert_array_equal(lab["count"][d, cells] - lengths[d, cells], starts[lab["col_index"][d, cells]])
        # a cell overflows when the pad closing it passes a column start: it ends two columns on
        col = lab["col_index"][d, cells[np.searchsorted(cells, pads) - 1]]  # the column of the cell each pad closes
        over = pads[(col + 2 < len(starts)) & (end == starts[np.minimum(col + 2, len(starts) - 1)])]
        assert all(lab["line_index"][d, p] >= 1 for p in over)  # row 0 shows the whole layout
        found += len(over)
        beyond_a_width += int((lengths[d, pads] > max(TABLE.col_gap) - 1).sum())
    assert found > 50 and found == overflowing.meta["stats"]["validation"]["overflowing_cells"]
    assert beyond_a_width > 0 and overflowing.table["max_pad"] == max(TABLE.col_gap) + 1
    later = lab["cell_start"] & (lab["line_index"] >= 1)
    assert (lab["cell_index"] != lab["col_index"])[later].mean() > 0.2
    assert (lab["cell_index"] == lab["col_index"])[lab["cell_start"] & (lab["line_index"] == 0)].all()
    assert lab["pad_determined"][lab["is_pad"] & (lab["line_index"] >= 1)].all()


def test_mixture_holds_tables_and_wrapped_prose(tmp_path):
    c = load_corpus(generate_corpus(dataclasses.replace(TABLE, table_fraction=0.5, widths=(20, 30)), tmp_path / "m"))
    s, lab = c.splits["train"], c.labels("train")
    prose = s.layout["col_starts"][:, 0] < 0
    assert 5 < prose.sum() < 35
    assert not lab["is_pad"][prose].any() and (lab["col_index"][prose] == -1).all()
    assert set(s.width[prose].tolist()) <= {20, 30} and (lab["count"][prose].max(1) <= s.width[prose]).all()
    assert lab["is_pad"][~prose].any(1).all()


def test_tokenizer_round_trip_and_word_ids_kept(plain):
    tok, s = plain.tokenizer, plain.splits["validation"]
    for d in range(5):
        text = tok.decode(s.input_ids[d, 1:].tolist())
        assert "  " in text
        assert tok(text, add_special_tokens=False)["input_ids"] == s.input_ids[d, 1:].tolist()
    words = [w for w, i in sorted(tok.get_vocab().items(), key=lambda kv: kv[1]) if 3 <= i < 3 + 60]
    prose = build_tokenizer(words).get_vocab()
    assert all(tok.get_vocab()[k] == v for k, v in prose.items())  # pads only appended
    assert plain.table["first_pad_id"] == len(prose)
    assert plain.pad_by_id.sum() == plain.table["max_pad"] - 1  # pads of 2 .. max_pad spaces


def test_same_seed_same_bytes(tmp_path):
    cfg = dataclasses.replace(TABLE, n_train=10, n_val=4, empty_cells=0.5)
    a, b = generate_corpus(cfg, tmp_path / "a"), generate_corpus(cfg, tmp_path / "b")
    other = generate_corpus(dataclasses.replace(cfg, seed=5), tmp_path / "o")
    for name in ("metadata.json", "train.safetensors", "validation.safetensors", "train.txt", "tokenizer.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "train.safetensors").read_bytes() != (other / "train.safetensors").read_bytes()


def test_prose_settings_record_has_no_table_fields(tmp_path):
    c = load_corpus(generate_corpus(CorpusConfig(widths="12:24", seq_len=32, n_train=4, n_val=2, vocab_size=20,
                                                 max_word_len=6), tmp_path / "p"))
    assert "layout" not in c.meta["config"] and "col_gap" not in c.meta["config"] and c.table is None
    assert c.pad_by_id is None and "is_pad" not in c.labels("validation")


@pytest.mark.parametrize("bad", [dict(col_gap=(7, 8)), dict(empty_cells=0.5, table_cols=(2, 3)),
                                 dict(table_fraction=1.5), dict(layout="grid"), dict(cell_words=0),
                                 dict(overflow=1.5), dict(overflow=0.5, empty_cells=0.5),
                                 dict(overflow=0.5, table_cols=(2, 3))])
def test_bad_table_settings_are_refused(tmp_path, bad):
    with pytest.raises(UserError):
        generate_corpus(dataclasses.replace(TABLE, **bad), tmp_path / "x")


def test_cli_table_layout_and_bad_gap(cli, tmp_path):
    rc, out, _ = cli("generate", "--layout", "table", "--seq-len", "48", "--n-train", "4", "--n-val", "2",
                     "--vocab-size", "20", "--max-word-len", "4", "--col-gap", "6:8", "--out", tmp_path / "c")
    assert rc == 0 and "corpus written" in out
    rc, _, err = cli("generate", "--layout", "table", "--max-word-len", "6", "--col-gap", "3:6", "--out",
                     tmp_path / "d")
    assert rc == 2 and "col_gap" in err and len(err.strip().splitlines()) == 1


def test_narrow_gaps_over_a_wide_range(cli, tmp_path):
    """Gaps down to 3 characters (one letter and a pad of two) over rows of 130-190 characters; too many words
    for one-letter spellings is one line, not a traceback."""
    c = load_corpus(generate_corpus(CorpusConfig(layout="table", col_gap="3:6", max_word_len=1, vocab_size=20,
                                                 table_cols="30:40", seq_len=200, n_train=4, n_val=4),
                                    tmp_path / "n"))
    lab = c.labels("validation")
    assert c.splits["validation"].width.min() >= 90 and lab["count"].max() > 80
    assert lab["is_pad"].any() and c.token_lengths[c.pad_by_id].max() == 5
    rc, _, err = cli("generate", "--layout", "table", "--col-gap", "3:6", "--max-word-len", "1", "--out",
                     tmp_path / "x")
    assert rc == 2 and "vocab_size" in err
