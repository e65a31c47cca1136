from linebreak.study.stages import fingerprint, run_stage


def test_stage_reused_only_when_inputs_unchanged(tmp_path):
    calls = []

    def work(path):
        calls.append(path)
        (path / "out.txt").write_text("x")
        return {"n": len(calls)}

    a = run_stage("s", tmp_path / "s", {"k": 1}, [], work, log=lambda m: None)
    b = run_stage("s", tmp_path / "s", {"k": 1}, [], work, log=lambda m: None)
    assert not a.reused and b.reused and b.summary == {"n": 1} and len(calls) == 1
    c = run_stage("s", tmp_path / "s", {"k": 2}, [], work, log=lambda m: None)
    d = run_stage("s", tmp_path / "s", {"k": 2}, ["upstream-changed"], work, log=lambda m: None)
    assert not c.reused and not d.reused and len(calls) == 3


def test_interrupted_stage_is_rerun(tmp_path):
    def crash(path):
        raise KeyboardInterrupt

    try:
        run_stage("s", tmp_path / "s", {}, [], crash, log=lambda m: None)
    except KeyboardInterrupt:
        pass
    r = run_stage("s", tmp_path / "s", {}, [], lambda p: {"ok": True}, log=lambda m: None)
    assert not r.reused and r.summary == {"ok": True}


def test_fingerprint_is_stable_and_order_free():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 1}, ["x"])
