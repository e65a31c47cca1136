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


def test_typed_stage_hands_on_its_result_and_recomputes_an_old_layout(tmp_path):
    """A stage's summary is its Result's JSON; ``.result`` is the typed result, for a fresh run and a reused
    one alike; a finished folder whose summary the class refuses (an older layout) is recomputed, logged."""
    import json
    from dataclasses import dataclass

    from linebreak.results import Result

    @dataclass
    class Out(Result):
        FORMAT = "linebreak-out/1"
        n: int
        xs: list[float]

    calls, logs = [], []

    def work(path):
        calls.append(path)
        return Out(len(calls), [0.5, float("nan")])

    a = run_stage("s", tmp_path / "s", {"k": 1}, [], work, log=logs.append, result=Out)
    b = run_stage("s", tmp_path / "s", {"k": 1}, [], work, log=logs.append, result=Out)
    assert not a.reused and b.reused and len(calls) == 1
    assert isinstance(a.result, Out) and isinstance(b.result, Out) and a.result.n == b.result.n == 1
    assert a.summary == b.summary == {"format": "linebreak-out/1", "n": 1, "xs": [0.5, None]}
    # an older layout: the summary without its format (what the study wrote before typed results)
    rec_path = tmp_path / "s" / "stage.json"
    rec = json.loads(rec_path.read_text())
    rec["summary"].pop("format")
    rec_path.write_text(json.dumps(rec))
    logs.clear()
    c = run_stage("s", tmp_path / "s", {"k": 1}, [], work, log=logs.append, result=Out)
    assert not c.reused and c.result.n == 2 and len(calls) == 2
    assert len(logs) == 1 and logs[0].startswith("[s] recomputing") and "older layout" in logs[0]
    assert run_stage("s", tmp_path / "s", {"k": 1}, [], work, log=logs.append, result=Out).reused
