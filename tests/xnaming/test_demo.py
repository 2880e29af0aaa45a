"""`xnaming demo`: runs the stages in order, reuses finished ones, stops at a failing one."""

from __future__ import annotations

import pytest

from xnaming import demo
from xnaming.demo import Demo, Stage, run_demo


def _recording_stage(name: str, log: list[str], always: bool = False) -> Stage:
    def run(state: Demo) -> str:
        log.append(name)
        (state.workdir / name).write_text("done")
        return f"{name}: wrote {state.workdir / name}"

    return Stage(name, f"the {name} stage", run=run, always=always)


def test_runs_every_stage_in_order_and_says_where_its_outputs_are(tmp_path, monkeypatch, capsys):
    log: list[str] = []
    stages = tuple(_recording_stage(name, log) for name in ("one", "two", "three"))
    monkeypatch.setattr(demo, "STAGES", stages)

    status = run_demo(tmp_path / "work", serve=False)

    captured = capsys.readouterr()
    assert status == 0
    assert log == ["one", "two", "three"]
    assert (tmp_path / "work" / "two").read_text() == "done"
    assert f"two: wrote {tmp_path / 'work' / 'two'}" in captured.out
    assert "all stages done" in captured.out


def test_a_second_run_reuses_finished_stages(tmp_path, monkeypatch, capsys):
    log: list[str] = []
    stages = (
        _recording_stage("a", log),
        _recording_stage("server", log, always=True),
        _recording_stage("b", log),
    )
    monkeypatch.setattr(demo, "STAGES", stages)
    run_demo(tmp_path, serve=False)
    assert log == ["a", "server", "b"]

    run_demo(tmp_path, serve=False)
    assert log == ["a", "server", "b", "server"]  # servers always start again
    assert "done earlier" in capsys.readouterr().out

    (tmp_path / ".done" / "a").unlink()  # redo "a": everything after it is redone too
    run_demo(tmp_path, serve=False)
    assert log[-3:] == ["a", "server", "b"]


def test_a_failing_stage_fails_the_demo_and_stops_the_server(tmp_path, monkeypatch):
    stopped = []

    class Server:
        def stop(self) -> None:
            stopped.append(True)

    def start(state: Demo) -> str:
        state.server = Server()
        return "started"

    def broken(state: Demo) -> str:
        raise RuntimeError("stage broke")

    monkeypatch.setattr(
        demo,
        "STAGES",
        (
            Stage("start", "", start, always=True),
            Stage("bad", "breaks", broken),
            _recording_stage("after", later := []),
        ),
    )
    with pytest.raises(RuntimeError, match="stage broke"):
        run_demo(tmp_path, serve=True)
    assert stopped == [True]
    assert not (tmp_path / ".done" / "bad").exists()
    assert later == []  # no stage runs after a failing one


def test_real_stage_table_covers_the_pipeline():
    names = [stage.name for stage in demo.STAGES]
    assert names == [
        "data",
        "train dnn",
        "train xnn",
        "explain",
        "ls start",
        "publish",
        "simulate",
        "analyze",
    ]
