"""Two annotators in a real headless Chromium: each sees their own project only, and a concept
one adds with the Taxonomy's "+ Add" never reaches the other.

Debian's chromium driven by Playwright (the ``browser`` fixture of tests/conftest.py); screenshots
go to test-artifacts/.
"""

from __future__ import annotations

import re

import pytest

from ls_backend.manager.client import Manager
from ls_backend.manager.publish import project_title
from tests.ls_backend.isolation_helpers import sign_in
from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.server, pytest.mark.browser]

ALICE, BOB = "ui-iso-alice@example.org", "ui-iso-bob@example.org"
CONCEPT = "alices-own-concept"


@pytest.fixture(scope="module")
def projects(label_studio) -> dict[str, int]:
    """Per-map projects (category jay) for alice and bob, published by the command line."""
    command = ["publish", str(label_studio.bundle), "--annotators", f"{ALICE},{BOB}"]
    command += ["--mode", "per-map", "--categories", "jay"]
    assert main([*command, "--data-dir", str(label_studio.data_dir)]) == 0
    return {
        a.email: next(
            p["id"] for p in a.projects if p["title"] == project_title(a.email, "per-map")
        )
        for a in Manager(label_studio.url, label_studio.token).annotators()
        if a.email in (ALICE, BOB)
    }


def _log_in(browser, label_studio, email: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{label_studio.url}/user/login/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", label_studio.password(email))
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/user/login" not in u, timeout=30_000)
    return context, page


def _first_task(label_studio, project_id: int) -> int:
    manager = Manager(label_studio.url, label_studio.token)
    organization = next(o for o, p in manager.projects() if p["id"] == project_id)
    tasks = manager.client(organization).tasks.list(project=project_id)
    return min(t.id for t in tasks)


def _open_taxonomy(page, label_studio, project_id: int, task_id: int) -> None:
    page.goto(f"{label_studio.url}/projects/{project_id}/data?task={task_id}")
    page.locator(".htx-taxonomy").wait_for(timeout=60_000)
    page.locator(".htx-taxonomy").click()


def _labels(label_studio, email: str) -> str:
    """The concepts stored for ``email``'s organization (``/api/labels``), as text."""
    session, _ = sign_in(label_studio.url, email, label_studio.password(email))
    answer = session.get(f"{label_studio.url}/api/labels?page_size=1000", timeout=30)
    assert answer.status_code == 200
    return answer.text


def test_each_project_list_shows_only_their_own(browser, label_studio, projects, artifacts):
    for email, own in projects.items():
        context, page = _log_in(browser, label_studio, email)
        page.goto(f"{label_studio.url}/projects/")
        page.locator("a[href^='/projects/']").first.wait_for(timeout=60_000)
        page.wait_for_load_state("networkidle")
        shown = {
            int(re.match(r"/projects/(\d+)", link.get_attribute("href")).group(1))
            for link in page.locator("a[href^='/projects/']").all()
        }
        name = email.split("@")[0]
        page.screenshot(path=str(artifacts / f"isolation_projects_{name}.png"), full_page=True)
        text = page.locator("body").inner_text()
        context.close()
        assert shown == {own}, email
        assert email in text
        assert not ({ALICE, BOB} - {email}) & set(re.findall(r"\S+@example\.org", text))


def test_a_concept_added_by_one_never_reaches_the_other(browser, label_studio, projects, artifacts):
    context, page = _log_in(browser, label_studio, ALICE)
    _open_taxonomy(page, label_studio, projects[ALICE], _first_task(label_studio, projects[ALICE]))
    page.get_by_label("Add new label").click()
    new = page.locator("[name=taxonomy__add]")
    new.fill(CONCEPT)
    new.press("Enter")
    # One click (check() retries while the list re-renders, which can toggle it back).
    box = page.locator(f".htx-taxonomy input[type=checkbox][id^='{CONCEPT}']")
    box.click()
    page.wait_for_function(
        "(id) => document.querySelector(`.htx-taxonomy input[id^='${id}']`)?.checked",
        arg=CONCEPT,
        timeout=30_000,
    )
    page.keyboard.press("Escape")
    with page.expect_response(
        lambda r: "/annotations" in r.url and r.request.method == "POST", timeout=30_000
    ) as answer:
        page.get_by_test_id("bottombar-submit-button").click()
    assert answer.value.status == 201
    context.close()
    assert CONCEPT in _labels(label_studio, ALICE)  # stored, for alice

    context, page = _log_in(browser, label_studio, BOB)
    _open_taxonomy(page, label_studio, projects[BOB], _first_task(label_studio, projects[BOB]))
    page.get_by_label("Add new label").wait_for(timeout=30_000)  # the list is open
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts / "isolation_taxonomy_bob.png"), full_page=True)
    offered = page.locator(f".htx-taxonomy input[type=checkbox][id^='{CONCEPT}']").count()
    text = page.locator("body").inner_text()
    context.close()
    assert offered == 0
    assert CONCEPT not in text
    assert CONCEPT not in _labels(label_studio, BOB)
