"""collect and status know a project by the id publish recorded, never by its title (issue 29).

alice once renamed her project "xnaming board: bob@..." and collect counted none of her work.
Now she cannot rename it (the isolation refuses), and a rename by whoever can (the manager, or
the database) changes nothing in what collect and status return.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ls_backend.manager.client import Manager
from ls_backend.manager.status import status
from tests.ls_backend.helpers import ranker
from tests.ls_backend.isolation_helpers import run_in_label_studio, sign_in
from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.server]

ALICE, BOB = "title-alice@example.org", "title-bob@example.org"


@pytest.fixture(scope="module")
def named(label_studio) -> dict:
    """alice and bob published; alice names two maps of her cardinal board."""
    common = ["--no-backend", "--data-dir", str(label_studio.data_dir)]
    assert (
        main(["publish", str(label_studio.bundle), "--annotators", f"{ALICE},{BOB}", *common]) == 0
    )
    projects = {r.annotator: r.project_id for r in label_studio.recorded() if r.mode == "board"}
    manager = Manager(label_studio.url, label_studio.token)
    (account,) = [a for a in manager.annotators() if a.email == ALICE]
    tasks = manager.client(account.organization).tasks.list(project=projects[ALICE])
    cardinal = next(t for t in tasks if t.data["category"] == "cardinal")
    ids = sorted(a["activation_id"] for a in cardinal.data["activations"])
    session, _ = sign_in(label_studio.url, ALICE, label_studio.password(ALICE))
    answer = session.post(
        f"{label_studio.url}/api/tasks/{cardinal.id}/annotations/",
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": label_studio.url},
        json={"result": ranker({"_": ids[2:], "g1": ids[:2]})},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return {"projects": projects, "session": session, "ids": ids}


def _collect(label_studio, out) -> pd.DataFrame:
    assert main(["collect", "--data-dir", str(label_studio.data_dir), "--out", str(out)]) == 0
    namings = pd.read_csv(out, dtype=str, keep_default_na=False)
    return namings[namings["annotator"].isin([ALICE, BOB])].reset_index(drop=True)


def _status(label_studio) -> dict:
    rows = status(label_studio.url, label_studio.token, projects=label_studio.recorded())
    return {(r.annotator, r.project_id): (r.tasks_done, r.named) for r in rows}


def test_the_record_is_private_and_holds_each_project_by_id(label_studio, named) -> None:
    path = label_studio.data_dir / "projects.json"
    assert path.stat().st_mode & 0o777 == 0o600
    stored = json.loads(path.read_text())
    ours = {
        (p["annotator"], p["project_id"])
        for p in stored["projects"]
        if p["annotator"] in (ALICE, BOB)
    }
    assert ours == {(ALICE, named["projects"][ALICE]), (BOB, named["projects"][BOB])}
    manager = Manager(label_studio.url, label_studio.token)
    ids = {a.email: a.id for a in manager.annotators()}
    for record in label_studio.recorded():
        if record.annotator in (ALICE, BOB):
            assert record.annotator_id == ids[record.annotator]


def test_alice_cannot_rename_her_project(label_studio, named) -> None:
    session = named["session"]
    headers = {"X-CSRFToken": session.cookies["csrftoken"], "Referer": label_studio.url}
    path = f"{label_studio.url}/api/projects/{named['projects'][ALICE]}/"
    answer = session.patch(path, json={"title": f"xnaming board: {BOB}"}, headers=headers)
    assert answer.status_code == 403, answer.text[:200]
    assert session.get(path, timeout=30).json()["title"] == f"xnaming board: {ALICE}"


def test_a_rename_changes_nothing_in_collect_and_status(label_studio, named, tmp_path) -> None:
    before, figures = _collect(label_studio, tmp_path / "before.csv"), _status(label_studio)
    mine = before[before["annotator"] == ALICE].set_index("activation_id")
    assert set(mine.loc[named["ids"][:2], "status"]) == {"named"}
    assert figures[(ALICE, named["projects"][ALICE])] == (1, 2)
    alice_project, bob_project = named["projects"][ALICE], named["projects"][BOB]
    # What alice tried, done where it still can be: in the database (the manager's API too).
    run_in_label_studio(
        label_studio.data_dir,
        "from projects.models import Project\n"
        f"Project.objects.filter(pk={alice_project}).update(title='xnaming board: {BOB}')\n"
        f"Project.objects.filter(pk={bob_project}).update(title='renamed by someone')\n",
    )
    try:
        after = _collect(label_studio, tmp_path / "after.csv")
        pd.testing.assert_frame_equal(after, before)
        assert _status(label_studio) == figures
    finally:
        run_in_label_studio(
            label_studio.data_dir,
            "from projects.models import Project\n"
            f"Project.objects.filter(pk={alice_project}).update(title='xnaming board: {ALICE}')\n"
            f"Project.objects.filter(pk={bob_project}).update(title='xnaming board: {BOB}')\n",
        )
