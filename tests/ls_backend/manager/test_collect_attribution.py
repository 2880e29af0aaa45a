"""collect counts only the project's own annotator's annotations (real Label Studio).

Foreign annotations are planted in bob's project the two ways one could get there: by the
manager through the API, and by another annotator (alice), written straight into the
database because no route lets her (test_isolation.py proves that).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ls_backend.manager.client import Manager
from ls_backend.manager.publish import project_title
from tests.ls_backend.helpers import ranker
from tests.ls_backend.isolation_helpers import run_in_label_studio, sign_in
from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.server]

ALICE, BOB = "attr-alice@example.org", "attr-bob@example.org"


@pytest.fixture(scope="module")
def boards(label_studio) -> dict:
    command = ["publish", str(label_studio.bundle), "--annotators", f"{ALICE},{BOB}"]
    assert main([*command, "--no-backend", "--data-dir", str(label_studio.data_dir)]) == 0
    manager = Manager(label_studio.url, label_studio.token)
    found = {}
    for account in manager.annotators():
        if account.email in (ALICE, BOB):
            (project,) = [
                p for p in account.projects if p["title"] == project_title(account.email, "board")
            ]
            tasks = manager.client(account.organization).tasks.list(project=project["id"])
            found[account.email] = {
                "id": account.id,
                "project": project["id"],
                "tasks": {t.data["category"]: t for t in tasks},
            }
    return found


def test_collect_counts_bob_only_and_names_the_foreign_authors(
    label_studio, boards, tmp_path, capsys
) -> None:
    bob = boards[BOB]
    cardinal, jay = bob["tasks"]["cardinal"], bob["tasks"]["jay"]
    ids = sorted(a["activation_id"] for a in cardinal.data["activations"])
    session, _ = sign_in(label_studio.url, BOB, label_studio.password(BOB))
    own = session.post(
        f"{label_studio.url}/api/tasks/{cardinal.id}/annotations/",
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": label_studio.url},
        json={
            "result": [
                *ranker({"_": ids[2:], "g1": ids[:2]}),
                {
                    "type": "textarea",
                    "from_name": "g1_name",
                    "to_name": "maps",
                    "value": {"text": ["crest"]},
                },
            ]
        },
        timeout=30,
    )
    assert own.status_code == 201
    # The manager annotates bob's cardinal board (later, so it would win without attribution).
    everything = ranker({"_": [], "g1": ids})
    by_manager = label_studio.client().annotations.create(id=cardinal.id, result=everything)
    # alice's annotation lands in bob's jay board.
    jay_ids = [a["activation_id"] for a in jay.data["activations"]]
    by_alice = int(
        run_in_label_studio(
            label_studio.data_dir,
            "from tasks.models import Annotation, Task\n"
            "from users.models import User\n"
            f"task = Task.objects.get(pk={jay.id})\n"
            "print(Annotation.objects.create(task=task, project=task.project,"
            f" completed_by=User.objects.get(email={ALICE!r}),"
            f" result={ranker({'_': [], 'g1': jay_ids})!r}).id)",
        )
    )
    try:
        out = tmp_path / "namings.csv"
        capsys.readouterr()
        assert main(["collect", "--data-dir", str(label_studio.data_dir), "--out", str(out)]) == 0
        warnings = capsys.readouterr().err
        manager_email = Manager(label_studio.url, label_studio.token).me()["email"]
        assert f"annotation {by_alice} on task {jay.id} is by {ALICE}" in warnings
        assert f"annotation {by_manager.id} on task {cardinal.id} is by {manager_email}" in warnings

        namings = pd.read_csv(out, dtype=str, keep_default_na=False)
        mine = namings[namings["annotator"] == BOB].set_index("activation_id")
        assert len(mine) == len(ids) + len(jay_ids)
        assert set(mine.loc[ids[:2], "concept"]) == {"crest"}
        assert set(mine.loc[ids[2:], "status"]) == {"unnamed"}
        assert set(mine.loc[jay_ids, "status"]) == {"unnamed"}
        theirs = namings[namings["annotator"] == ALICE]
        assert set(theirs["status"]) == {"unnamed"}
        # The raw export keeps every annotation, foreign ones included.
        raw = json.loads(
            (tmp_path / "namings-exports" / f"project-{bob['project']}.json").read_text()
        )
        kept = {a["id"] for task in raw for a in task["annotations"]}
        assert {own.json()["id"], by_manager.id, by_alice} <= kept
    finally:
        for annotation in (by_manager.id, by_alice):
            label_studio.client().annotations.delete(annotation)
