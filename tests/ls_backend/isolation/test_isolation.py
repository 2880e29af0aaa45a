"""Independent annotators on a real Label Studio (the session server, xnaming's isolation).

Two annotators published by the command line, each way round, through a logged-in session and
through a personal access token: nothing of the other's can be listed, opened, exported or
changed; moving into the other's organization fails; the manager still reaches everything.
Every refusal is checked next to the same call succeeding on the caller's own project, so a
404 cannot come from a wrong URL.
"""

from __future__ import annotations

import time

import pytest
import requests

from ls_backend.isolation import ORGANIZATION_HEADER
from ls_backend.manager.client import Manager
from ls_backend.manager.publish import project_title
from ls_backend.server import login_session
from tests.ls_backend.helpers import ranker
from tests.ls_backend.isolation_helpers import Annotator, export, run_in_label_studio, sign_in
from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.server]

ALICE, BOB, CAROL = "iso-alice@example.org", "iso-bob@example.org", "iso-carol@example.org"
PAIRS = [(ALICE, BOB), (BOB, ALICE)]
AUTHS = ["session", "token"]
REFUSED = {403, 404}


def _annotator(label_studio, manager: Manager, email: str) -> Annotator:
    (account,) = [a for a in manager.annotators() if a.email == email]
    (project,) = [p for p in account.projects if p["title"] == project_title(email, "board")]
    client = manager.client(account.organization)
    task_ids = sorted(t.id for t in client.tasks.list(project=project["id"]))
    session, token = sign_in(label_studio.url, email, label_studio.password(email))
    person = Annotator(
        email=email,
        password=label_studio.password(email),
        user_id=account.id,
        organization=account.organization,
        project_id=project["id"],
        task_ids=task_ids,
        annotation_id=-1,
        url=label_studio.url,
        session=session,
        token=token,
    )
    # The annotator's own work, made as they make it (positive control for every refusal).
    answer = person.call(
        "session",
        "POST",
        f"/api/tasks/{task_ids[0]}/annotations/",
        json={"result": ranker({"_": [], "g1": []}), "lead_time": 1.0},
    )
    assert answer.status_code == 201, answer.text
    person.annotation_id = answer.json()["id"]
    return person


@pytest.fixture(scope="module")
def people(label_studio) -> dict[str, Annotator]:
    """alice and bob, published together by `xnaming publish` (boards, ML backend)."""
    started = time.perf_counter()
    command = ["publish", str(label_studio.bundle), "--annotators", f"{ALICE},{BOB}"]
    assert main([*command, "--data-dir", str(label_studio.data_dir)]) == 0
    print(f"publish for two annotators: {time.perf_counter() - started:.1f} s")
    manager = Manager(label_studio.url, label_studio.token)
    return {email: _annotator(label_studio, manager, email) for email in (ALICE, BOB)}


def _project_ids(person: Annotator, auth: str) -> set[int]:
    answer = person.call(auth, "GET", "/api/projects/?page_size=1000")
    assert answer.status_code == 200
    return {p["id"] for p in answer.json()["results"]}


@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize(("me", "other"), PAIRS)
def test_each_sees_and_opens_only_their_own(people, me, other, auth) -> None:
    mine, theirs = people[me], people[other]
    assert _project_ids(mine, auth) == {mine.project_id}
    reads = [
        "/api/projects/{p}/",
        "/api/projects/{p}/tasks",
        "/api/tasks?project={p}",
        "/api/tasks/{t}/",
        "/api/tasks/{t}/annotations/",
        "/api/annotations/{a}/",
        "/api/projects/{p}/export?exportType=JSON&download_all_tasks=true",
        "/api/projects/{p}/exports",
        "/api/projects/{p}/next",
        "/api/projects/{p}/summary",
    ]
    for path in reads:
        own = path.format(p=mine.project_id, t=mine.task_ids[0], a=mine.annotation_id)
        foreign = path.format(p=theirs.project_id, t=theirs.task_ids[0], a=theirs.annotation_id)
        assert mine.call(auth, "GET", own).status_code == 200, own
        answer = mine.call(auth, "GET", foreign)
        assert answer.status_code in REFUSED, (foreign, answer.status_code, answer.text[:200])
        assert theirs.email not in answer.text
    # Lists filtered by organization answer, and hold nothing of the other's.
    for path in ("/api/predictions?task={t}", "/api/dm/views?project={p}", "/api/users/"):
        answer = mine.call(auth, "GET", path.format(p=theirs.project_id, t=theirs.task_ids[0]))
        assert answer.status_code in REFUSED | {200}
        assert theirs.email not in answer.text
        assert f'"project":{theirs.project_id},' not in answer.text.replace(" ", "")


@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize(("me", "other"), PAIRS)
def test_nobody_annotates_or_changes_the_others_work(label_studio, people, me, other, auth):
    mine, theirs = people[me], people[other]
    manager = Manager(label_studio.url, label_studio.token)
    before = export(manager, theirs.project_id)
    result = ranker({"_": [], "g2": []})
    attempts = [
        ("POST", f"/api/tasks/{theirs.task_ids[1]}/annotations/", {"result": result}),
        ("PATCH", f"/api/annotations/{theirs.annotation_id}/", {"result": result}),
        ("DELETE", f"/api/annotations/{theirs.annotation_id}/", None),
        ("PATCH", f"/api/tasks/{theirs.task_ids[0]}/", {"data": {"category": "x"}}),
        ("POST", f"/api/projects/{theirs.project_id}/import", [{"category": "x"}]),
        ("PATCH", f"/api/projects/{theirs.project_id}/", {"title": "taken"}),
        ("DELETE", f"/api/projects/{theirs.project_id}/", None),
    ]
    for method, path, body in attempts:
        answer = mine.call(auth, method, path, json=body)
        assert answer.status_code in REFUSED, (method, path, answer.status_code, answer.text[:200])
    assert export(manager, theirs.project_id) == before


@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize(("me", "other"), PAIRS)
def test_moving_into_the_others_organization_fails(label_studio, people, me, other, auth):
    mine, theirs = people[me], people[other]
    for value in (theirs.organization, None, 10**6):
        answer = mine.call(
            auth, "PATCH", f"/api/users/{mine.user_id}/", json={"active_organization": value}
        )
        assert answer.status_code == 400, (value, answer.text[:200])
        assert "active_organization" in answer.text
    # A harmless change of their own account still works.
    answer = mine.call(auth, "PATCH", f"/api/users/{mine.user_id}/", json={"first_name": "Al"})
    assert answer.status_code == 200
    assert answer.json()["active_organization"] == mine.organization
    # The manager's header means nothing from an annotator.
    path = f"/api/projects/{theirs.project_id}/"
    headers = {ORGANIZATION_HEADER: str(theirs.organization)}
    assert mine.call(auth, "GET", path, headers=headers).status_code in REFUSED
    assert _project_ids(mine, auth) == {mine.project_id}
    # Nor can they change another account: the other's is not even visible, the manager's is.
    manager_id = Manager(label_studio.url, label_studio.token).me()["id"]
    other_user = mine.call(auth, "PATCH", f"/api/users/{theirs.user_id}/", json={"first_name": "x"})
    assert other_user.status_code == 404
    for body in ({"first_name": "owned"}, {"active_organization": mine.organization}):
        answer = mine.call(auth, "PATCH", f"/api/users/{manager_id}/", json=body)
        assert answer.status_code == 403, answer.text[:200]


@pytest.mark.parametrize(("me", "other"), PAIRS)
def test_organization_administration_is_the_managers(label_studio, people, me, other) -> None:
    mine = people[me]
    manager = Manager(label_studio.url, label_studio.token)
    manager_id = manager.me()["id"]
    for method, path, body in [
        ("DELETE", f"/api/organizations/{mine.organization}/memberships/{manager_id}/", None),
        ("PATCH", f"/api/organizations/{mine.organization}", {"title": "mine"}),
        ("POST", "/api/jwt/settings", {"legacy_api_tokens_enabled": True}),
        ("POST", "/api/invite/reset-token", None),
        ("GET", f"/api/webhooks?project={mine.project_id}", None),  # backend credentials
        ("GET", "/api/xnaming/annotators", None),
        ("POST", "/api/xnaming/annotators", {"email": "eve@example.org"}),
    ]:
        answer = mine.call("token", method, path, json=body)
        assert answer.status_code == 403, (method, path, answer.status_code, answer.text[:200])
    assert mine.organization in manager.organizations()
    assert "eve@example.org" not in {a.email for a in manager.annotators()}


@pytest.mark.parametrize(("me", "other"), PAIRS)
def test_own_invite_link_signs_nobody_up(label_studio, people, me, other) -> None:
    link = people[me].call("session", "GET", "/api/invite").json()["invite_url"]
    for path, email in ((link, f"via-{me}"), ("/user/signup/", f"nolink-{me}")):
        stranger = requests.Session()
        stranger.get(label_studio.url + path, timeout=30)
        answer = stranger.post(
            label_studio.url + path,
            data={
                "email": email,
                "password": "a-long-password-1",
                "csrfmiddlewaretoken": stranger.cookies.get("csrftoken", ""),
            },
            headers={"Referer": label_studio.url + path},
            timeout=30,
        )
        assert answer.status_code == 403
    emails = {a.email for a in Manager(label_studio.url, label_studio.token).annotators()}
    assert not {f"via-{me}", f"nolink-{me}"} & emails


def test_manager_reaches_every_project_and_there_is_no_stray_one(label_studio, people) -> None:
    manager = Manager(label_studio.url, label_studio.token)
    reached = {p["id"]: o for o, p in manager.projects()}
    for person in people.values():
        assert reached[person.project_id] == person.organization
        tasks = export(manager, person.project_id)
        assert person.annotation_id in {a["id"] for t in tasks for a in t["annotations"]}
    stray = str(label_studio.data_dir / "label-studio")
    assert stray not in {p["title"] for _, p in manager.projects()}
    # An older data dir's stray project (made by `label-studio init NAME`) goes at start.
    made = run_in_label_studio(
        label_studio.data_dir,
        "from organizations.models import Organization\n"
        "from projects.models import Project\n"
        "from users.models import User\n"
        f"print(Project.objects.create(title={stray!r}, organization=Organization.objects.first(),"
        " created_by=User.objects.get(is_superuser=True)).id)",
    )
    assert int(made) in {p["id"] for _, p in manager.projects()}
    label_studio.server._check_isolation(label_studio.token)
    assert int(made) not in {p["id"] for _, p in manager.projects()}


def test_the_managers_stored_organization_never_moves(label_studio, people) -> None:
    """Work in an annotator's organization (here: an annotation) leaves no trace on the account."""
    manager = Manager(label_studio.url, label_studio.token)

    def stored() -> int:
        return manager.request("GET", "/api/current-user/whoami").json()["active_organization"]

    before = stored()
    bob = people[BOB]
    assert before != bob.organization
    made = label_studio.client().annotations.create(id=bob.task_ids[1], result=[])
    try:
        assert stored() == before
        assert label_studio.client().annotations.get(made.id).completed_by == manager.me()["id"]
    finally:
        label_studio.client().annotations.delete(made.id)


def test_annotator_added_later_is_isolated_and_can_be_removed(label_studio, people, capsys):
    common = ["--data-dir", str(label_studio.data_dir)]
    assert main(["publish", str(label_studio.bundle), "--annotators", CAROL, *common]) == 0
    carol = _annotator(label_studio, Manager(label_studio.url, label_studio.token), CAROL)
    assert _project_ids(carol, "session") == {carol.project_id}
    for person in people.values():
        assert carol.call("token", "GET", f"/api/projects/{person.project_id}/").status_code == 404
        assert person.call("token", "GET", f"/api/projects/{carol.project_id}/").status_code == 404

    capsys.readouterr()
    assert main(["ls", "remove-annotator", CAROL, *common]) == 0
    assert "can no longer log in" in capsys.readouterr().out
    with pytest.raises(PermissionError):
        login_session(label_studio.url, CAROL, carol.password)
    assert carol.call("session", "GET", "/api/projects/").status_code in {401, 403}
    refresh = requests.post(
        f"{label_studio.url}/api/token/refresh/", json={"refresh": carol.token}, timeout=30
    )
    if refresh.status_code == 200:  # the token refreshes, but what it gives is refused
        bearer = {"Authorization": f"Bearer {refresh.json()['access']}"}
        answer = requests.get(f"{label_studio.url}/api/projects/", headers=bearer, timeout=30)
        assert answer.status_code in {401, 403}
    else:
        assert refresh.status_code == 401
    # Their project and work stay; publishing again lets them back in, same password.
    manager = Manager(label_studio.url, label_studio.token)
    assert carol.project_id in {p["id"] for _, p in manager.projects()}
    assert main(["publish", str(label_studio.bundle), "--annotators", CAROL, *common]) == 0
    assert login_session(label_studio.url, CAROL, carol.password)


def test_a_project_from_before_the_isolation_moves_into_its_annotators_organization(
    label_studio, tmp_path, capsys
) -> None:
    """Data dirs made earlier hold every project, and every annotator, in the first organization."""
    from label_config import board_config
    from ls_backend.manager.publish import board_tasks, load_bundle

    legacy, password = "iso-legacy@example.org", "a-legacy-password-1"
    run_in_label_studio(
        label_studio.data_dir,
        "from organizations.models import Organization\n"
        "from users.models import User\n"
        f"user = User.objects.create_user(email={legacy!r}, password={password!r})\n"
        "first = Organization.objects.first()\n"
        "first.add_user(user)\n"
        "user.active_organization = first\n"
        "user.save()\n",
    )
    client = label_studio.client()  # the manager, in the first organization
    project = client.projects.create(
        title=project_title(legacy, "board"), label_config=board_config()
    )
    table = load_bundle(label_studio.bundle)
    tasks = board_tasks(
        table, label_studio.bundle, files_root=label_studio.files_root, annotator=legacy
    )
    client.projects.import_tasks(project.id, request=tasks)
    task = min(t.id for t in client.tasks.list(project=project.id))
    session = login_session(label_studio.url, legacy, password)
    headers = {"X-CSRFToken": session.cookies["csrftoken"], "Referer": label_studio.url}
    answer = session.post(
        f"{label_studio.url}/api/tasks/{task}/annotations/",
        headers=headers,
        json={"result": ranker({"_": [], "g1": []})},
        timeout=30,
    )
    assert answer.status_code == 201

    common = ["--data-dir", str(label_studio.data_dir)]
    capsys.readouterr()
    assert main(["publish", str(label_studio.bundle), "--annotators", legacy, *common]) == 0
    printed = capsys.readouterr().out
    assert f"project {project.id} moved into their organization" in printed
    assert "0 of 2 tasks added" in printed
    manager = Manager(label_studio.url, label_studio.token)
    (account,) = [a for a in manager.annotators() if a.email == legacy]
    assert [p["id"] for p in account.projects] == [project.id]
    annotations = [a["id"] for t in export(manager, project.id) for a in t["annotations"]]
    assert annotations == [answer.json()["id"]]
    # Now they are alone: their project only, nothing else of the first organization.
    session = login_session(label_studio.url, legacy, password)
    listed = session.get(f"{label_studio.url}/api/projects/", timeout=30).json()["results"]
    assert [p["id"] for p in listed] == [project.id]
    out = tmp_path / "namings.csv"
    assert main(["collect", *common, "--out", str(out)]) == 0
    assert f"project {project.id} is not in" not in capsys.readouterr().err
