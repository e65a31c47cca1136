import pytest

from linebreak.io import UserError, atomic_write, load_json, load_tensors, prepare_out_dir, save_json


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "x.json"
    save_json(p, {"a": 1})

    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(p, boom)
    assert load_json(p) == {"a": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["x.json"]


def test_json_nan_becomes_null(tmp_path):
    import numpy as np

    save_json(tmp_path / "n.json", {"x": float("nan"), "y": np.float32(2.5), "z": np.arange(3)})
    assert load_json(tmp_path / "n.json") == {"x": None, "y": 2.5, "z": [0, 1, 2]}


def test_corrupt_inputs_are_user_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(UserError):
        load_json(tmp_path / "bad.json")
    with pytest.raises(UserError):
        load_tensors(tmp_path / "bad.safetensors")
    with pytest.raises(UserError):
        load_tensors(tmp_path / "missing.safetensors")


def test_out_dir_refuses_without_force(tmp_path):
    (tmp_path / "done.json").write_text("{}")
    with pytest.raises(UserError, match="--force"):
        prepare_out_dir(tmp_path, force=False, marker="done.json")
    prepare_out_dir(tmp_path, force=True, marker="done.json")


def test_staging_dir_replaces_whole_folder_with_normal_mode(tmp_path):
    import os

    from linebreak.io import staging_dir

    final = tmp_path / "corpus"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with staging_dir(final) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in final.iterdir()] == ["new.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert final.stat().st_mode & 0o777 == 0o777 & ~umask
    with pytest.raises(RuntimeError), staging_dir(final) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("interrupted")
    assert [p.name for p in final.iterdir()] == ["new.txt"]
