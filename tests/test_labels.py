"""The one label function against a brute-force recount from the decoded text."""

import numpy as np
import pytest

from linebreak.corpus import CorpusConfig, generate_corpus, load_corpus, token_labels


def brute_force(tokens: list[str], width: int) -> dict[str, list]:
    """Recount every label by walking the token strings one by one."""
    out = {k: [] for k in ("count", "remaining", "line_len", "is_newline", "next_is_newline", "next_word_len",
                           "line_index")}
    line, line_no = "", 0
    for t, tok in enumerate(tokens):
        if tok == "\n":
            out["line_len"].append(len(line))
            line, line_no = "", line_no + 1
        else:
            out["line_len"].append(-1)
            line += "" if tok == "<bos>" else tok
        out["count"].append(len(line))
        out["remaining"].append(width - len(line))
        out["is_newline"].append(tok == "\n")
        out["next_is_newline"].append(t + 1 < len(tokens) and tokens[t + 1] == "\n")
        later = [w for w in tokens[t + 1:] if w not in ("\n", "<bos>")]
        out["next_word_len"].append(len(later[0].lstrip(" ")) if later else -1)
        out["line_index"].append(line_no)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_labels_match_brute_force_recount(tmp_path, seed):
    cfg = CorpusConfig(widths="12:30", seq_len=80, n_train=6, n_val=6, vocab_size=60, max_word_len=8,
                       seed=seed)
    corpus = load_corpus(generate_corpus(cfg, tmp_path / "c"))
    labels = corpus.labels("validation")
    split = corpus.splits["validation"]
    for d in range(len(split.width)):
        tokens = corpus.tokenizer.convert_ids_to_tokens(split.input_ids[d].tolist())
        want = brute_force(tokens, int(split.width[d]))
        for name, values in want.items():
            np.testing.assert_array_equal(labels[name][d], values, err_msg=f"{name}, doc {d}")
        assert (labels["width"][d] == split.width[d]).all()
        # greedy wrapping: no line over the width, and each break was needed
        assert labels["count"][d].max() <= split.width[d]
        ends = np.flatnonzero(labels["is_newline"][d] & (labels["next_word_len"][d] >= 0))
        assert (labels["line_len"][d][ends] + 1 + labels["next_word_len"][d][ends] > split.width[d]).all()


def test_token_labels_hand_example():
    # "<bos>ab cde\nf gh" at width 6: lengths 0,2,4,1,1,3
    lab = token_labels(np.array([0, 2, 4, 1, 1, 3]), np.array([0, 0, 0, 1, 0, 0], bool), 6)
    assert lab["count"].tolist() == [0, 2, 6, 0, 1, 4]
    assert lab["remaining"].tolist() == [6, 4, 0, 6, 5, 2]
    assert lab["line_len"].tolist() == [-1, -1, -1, 6, -1, -1]
    assert lab["next_is_newline"].tolist() == [False, False, True, False, False, False]
    assert lab["next_word_len"].tolist() == [2, 3, 1, 1, 2, -1]
    assert lab["line_index"].tolist() == [0, 0, 0, 1, 1, 1]


def test_table_labels_hand_example():
    # "<bos>ab c   de\nfg     hi" with columns at 0 and 7: lengths 0,2,2,3(pad),2,0,2,5(pad),2
    from linebreak.corpus.labels import table_labels

    lengths = np.array([0, 2, 2, 3, 2, 0, 2, 5, 2])
    nl = np.array([0, 0, 0, 0, 0, 1, 0, 0, 0], bool)
    pad = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0], bool)
    lab = token_labels(lengths, nl, 14)
    tab = table_labels(lab, lengths, pad, np.array([0, 7, -1]), shifted=False)
    assert lab["count"].tolist() == [0, 2, 4, 7, 9, 0, 2, 7, 9]
    assert tab["col_index"].tolist() == [-1, 0, 0, 0, 1, -1, 0, 0, 1]
    assert tab["next_col"].tolist() == [7, 7, 7, -1, -1, 7, 7, -1, -1]
    assert tab["cell_start"].tolist() == [False, True, False, False, True, False, True, False, True]
    assert tab["next_is_pad"].tolist() == [False, False, True, False, False, False, True, False, False]
    assert tab["pad_determined"].tolist() == [False] * 7 + [True, False]  # the pad of row 1
    assert not table_labels(lab, lengths, pad, np.array([0, 7]), shifted=True)["pad_determined"].any()
    prose = table_labels(lab, lengths, pad, np.array([-1, -1]), shifted=False)  # a prose document
    assert (prose["col_index"] == -1).all() and not prose["is_pad"].any()
    assert (prose["cell_index"] == -1).all()
    assert tab["cell_index"].tolist() == tab["col_index"].tolist()  # no empty cell


def test_cell_index_hand_example_with_an_empty_cell():
    # columns at 0, 5, 10; "<bos>ab        cd\nef   gh   ij": row 0 leaves column 1 empty (its pad runs to 10)
    from linebreak.corpus.labels import table_labels

    lengths = np.array([0, 2, 8, 2, 0, 2, 3, 2, 3, 2])
    nl = np.array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0], bool)
    pad = np.array([0, 0, 1, 0, 0, 0, 1, 0, 1, 0], bool)
    lab = token_labels(lengths, nl, 15)
    tab = table_labels(lab, lengths, pad, np.array([0, 5, 10]), shifted=True)
    assert lab["count"].tolist() == [0, 2, 10, 12, 0, 2, 5, 7, 10, 12]
    assert tab["col_index"].tolist() == [-1, 0, 0, 2, -1, 0, 0, 1, 1, 2]
    assert tab["cell_index"].tolist() == [-1, 0, 0, 1, -1, 0, 0, 1, 1, 2]  # "cd" is the 2nd cell, in column 2
