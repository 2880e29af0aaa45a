"""`xnaming demo --shortcut`: the planted class reaches the data stage; its own work directory."""

from __future__ import annotations

from xnaming import demo
from xnaming.cli import main
from xnaming.demo import QUICK, Demo, Stage, run_demo


def _stage(seen: list) -> Stage:
    def run(state: Demo) -> str:
        seen.append(state.shortcut)
        return "recorded"

    fields = {"name": "record", "title": "records the shortcut", "run": run}
    if "issue" in Stage.__dataclass_fields__:  # stages named their issue until issue 11
        fields["issue"] = 1
    return Stage(**fields)


def test_the_default_shortcut_is_the_middle_class_and_a_change_redoes_the_stages(
    tmp_path, monkeypatch
):
    seen: list = []
    monkeypatch.setattr(demo, "STAGES", (_stage(seen),))
    run_demo(tmp_path, serve=False, size=QUICK, shortcut="")
    assert seen == [str(QUICK.classes // 2 + 1)]  # "2" of 3: not the first class
    run_demo(tmp_path, serve=False, size=QUICK, shortcut="")
    assert len(seen) == 1  # reused
    run_demo(tmp_path, serve=False, size=QUICK)
    assert seen[-1] is None  # without a shortcut nothing earlier is reused


def test_the_command_passes_the_shortcut_and_picks_its_own_workdir(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(demo, "run_demo", lambda workdir, **kw: calls.append((workdir, kw)) or 0)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--no-serve", "--quick", "--shortcut"]) == 0
    assert main(["demo", "--no-serve", "--shortcut", "5", "--workdir", "w"]) == 0
    assert main(["demo", "--no-serve"]) == 0
    (first, one), (second, two), (third, three) = calls
    assert (str(first), one["shortcut"]) == ("runs/demo-shortcut", "")
    assert (str(second), two["shortcut"]) == ("w", "5")
    assert (str(third), three["shortcut"]) == ("runs/demo", None)


def test_correct_runs_the_loop_after_the_report_and_needs_a_shortcut(tmp_path, monkeypatch, capsys):
    seen: list = []
    monkeypatch.setattr(demo, "STAGES", (_stage(seen),))
    after = Stage(name="after", title="the loop", run=lambda state: seen.append("loop") or "ok")
    monkeypatch.setattr(demo, "CORRECTION_STAGES", (after,))
    run_demo(tmp_path, serve=False, size=QUICK, shortcut="", correct=True)
    assert seen == ["2", "loop"]
    run_demo(tmp_path, serve=False, size=QUICK, shortcut="")
    assert seen == ["2", "loop"]  # without --correct, no loop; the rest reused
    assert main(["demo", "--no-serve", "--quick", "--correct"]) == 3
    assert "give --shortcut" in capsys.readouterr().err
    calls = []
    monkeypatch.setattr(demo, "run_demo", lambda workdir, **kw: calls.append(kw) or 0)
    assert main(["demo", "--no-serve", "--shortcut", "--correct"]) == 0
    assert calls[-1]["correct"] is True
