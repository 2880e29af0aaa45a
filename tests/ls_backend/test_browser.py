"""An annotator in a real headless Chromium: a board and two per-map tasks, then collect.

Debian's chromium, driven by Playwright (which never downloads a browser here). Without it the
tests are skipped with one line saying how to install it (`make test` installs it when run as
root); under CI=true they fail. Screenshots go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import time

import pandas as pd
import pytest
import requests
from playwright.sync_api import Error as PlaywrightError

from tests.system_packages import require_command
from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.server, pytest.mark.browser]

BOARD_ANNOTATOR = "ui-board@example.org"
PER_MAP_ANNOTATOR = "ui-permap@example.org"


@pytest.fixture(scope="session", autouse=True)
def chromium() -> str:
    """Debian's chromium; session-scoped and autouse, so a missing browser skips (or fails)
    these tests before the Label Studio server is started for them."""
    return require_command("chromium", needed_for="the browser tests")


def _log_in(browser, url: str, email: str, password: str):
    context = browser.new_context(viewport={"width": 1600, "height": 2000})
    page = context.new_page()
    page.goto(f"{url}/user/login/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/user/login" not in u, timeout=30_000)
    return context, page


def _images_loaded(page, selector: str) -> None:
    page.wait_for_function(
        "(sel) => { const imgs = Array.from(document.querySelectorAll(sel));"
        " return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        arg=selector,
        timeout=30_000,
    )


def _drag(page, activation_id: str, bucket: str) -> None:
    """Drag a map card into a ranker bucket, in small steps as react-beautiful-dnd needs."""
    card = page.locator(f'[data-rbd-draggable-id="{activation_id}"]')
    for attempt in range(3):  # the board may re-render once after its images load
        try:
            card.scroll_into_view_if_needed()
            break
        except PlaywrightError as error:
            if "not attached" not in str(error) or attempt == 2:
                raise
            page.wait_for_timeout(500)
    box = card.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y + 8, steps=4)
    target = page.locator(f'[data-rbd-droppable-id="{bucket}"]').bounding_box()
    page.mouse.move(target["x"] + 20, target["y"] + 20, steps=15)
    page.wait_for_timeout(250)
    page.mouse.up()
    page.wait_for_timeout(400)
    page.locator(
        f'[data-rbd-droppable-id="{bucket}"] [data-rbd-draggable-id="{activation_id}"]'
    ).wait_for()


def _submit(page) -> None:
    with page.expect_response(
        lambda r: "/annotations" in r.url and r.request.method == "POST", timeout=30_000
    ) as answer:
        page.get_by_test_id("bottombar-submit-button").click()
    assert answer.value.status == 201


def _tasks_by_key(client, project_id: int) -> dict:
    tasks = client.tasks.list(project=project_id, fields="all", page_size=1000)
    return {t.data.get("activation_id", t.data["category"]): t for t in tasks}


def _predict(label_studio, task) -> list:
    answer = requests.post(
        f"{label_studio.backend_url}/predict",
        json={"tasks": [{"id": task.id, "data": task.data, "project": task.project}]},
        auth=label_studio.backend_auth,
        timeout=30,
    )
    return answer.json()["results"][0]


def test_annotator_groups_names_discards_and_collect_reads_it(
    label_studio, browser, artifacts, tmp_path
) -> None:
    common = ["--data-dir", str(label_studio.data_dir)]
    bundle = str(label_studio.bundle)
    # The board starts all unsorted (no backend) so the drags below are the whole annotation.
    assert main(["publish", bundle, "--annotators", BOARD_ANNOTATOR, "--no-backend", *common]) == 0
    assert (
        main(["publish", bundle, "--annotators", PER_MAP_ANNOTATOR, "--mode", "per-map", *common])
        == 0
    )
    client = label_studio.client()
    projects = {p.title: p.id for p in label_studio.projects()}
    board_project = projects[f"xnaming board: {BOARD_ANNOTATOR}"]
    per_map_project = projects[f"xnaming per-map: {PER_MAP_ANNOTATOR}"]
    board_tasks = _tasks_by_key(client, board_project)
    per_map_tasks = _tasks_by_key(client, per_map_project)

    # -- the board -----------------------------------------------------------------------
    context, page = _log_in(
        browser, label_studio.url, BOARD_ANNOTATOR, label_studio.password(BOARD_ANNOTATOR)
    )
    page.goto(f"{label_studio.url}/projects/{board_project}/data?task={board_tasks['cardinal'].id}")
    page.locator('[data-rbd-draggable-id="cardinal_0000:x0"]').wait_for(timeout=60_000)
    _images_loaded(page, "[data-rbd-draggable-id] img")
    assert "cardinal_0000" in page.locator(
        '[data-rbd-draggable-id="cardinal_0000:x0"] img'
    ).get_attribute("title")
    _drag(page, "cardinal_0000:x0", "g1")
    _drag(page, "cardinal_0001:x0", "g1")
    _drag(page, "cardinal_0000:x1", "g2")
    _drag(page, "cardinal_0003:x3", "discard")
    name = page.locator("input[name=g1_name]")
    name.fill("head")
    name.press("Enter")
    page.screenshot(path=str(artifacts / "board.png"), full_page=True)
    _submit(page)
    context.close()

    # -- per map: add a concept, then reuse it -------------------------------------------
    first, second = per_map_tasks["cardinal_0000:x0"], per_map_tasks["cardinal_0000:x1"]
    similar = per_map_tasks["cardinal_0001:x0"]
    assert _predict(label_studio, similar) == []
    context, page = _log_in(
        browser, label_studio.url, PER_MAP_ANNOTATOR, label_studio.password(PER_MAP_ANNOTATOR)
    )
    page.goto(f"{label_studio.url}/projects/{per_map_project}/data?task={first.id}")
    page.locator(".htx-taxonomy").wait_for(timeout=60_000)
    _images_loaded(page, "img[src*='local-files']")
    page.locator(".htx-taxonomy").click()
    page.get_by_label("Add new label").click()
    new = page.locator("[name=taxonomy__add]")
    new.fill("eye")
    new.press("Enter")
    page.locator(".htx-taxonomy input[type=checkbox][id^='eye']").check()
    page.keyboard.press("Escape")
    page.screenshot(path=str(artifacts / "per_map.png"), full_page=True)
    _submit(page)

    page.goto(f"{label_studio.url}/projects/{per_map_project}/data?task={second.id}")
    page.locator(".htx-taxonomy").wait_for(timeout=60_000)
    page.locator(".htx-taxonomy").click()
    reuse = page.locator(".htx-taxonomy input[type=checkbox][id^='eye']")
    reuse.wait_for(timeout=30_000)  # the concept added on the first task is offered again
    reuse.check()
    page.keyboard.press("Escape")
    page.screenshot(path=str(artifacts / "per_map_reuse.png"), full_page=True)
    _submit(page)
    context.close()

    # The UI annotation reached the backend through the webhook and changed its proposal.
    deadline = time.monotonic() + 20
    while _predict(label_studio, similar) == [] and time.monotonic() < deadline:
        time.sleep(0.2)
    (proposal,) = _predict(label_studio, similar)
    assert proposal["result"][0]["value"]["taxonomy"] == [["eye"]]

    # -- collect: exactly the expected rows ------------------------------------------------
    out = tmp_path / "namings.csv"
    assert main(["collect", *common, "--out", str(out)]) == 0
    namings = pd.read_csv(out, dtype=str, keep_default_na=False)
    activations = pd.read_csv(label_studio.bundle / "activations.csv", dtype=str)
    special = {
        (BOARD_ANNOTATOR, "cardinal_0000:x0"): ("head", "named"),
        (BOARD_ANNOTATOR, "cardinal_0001:x0"): ("head", "named"),
        (BOARD_ANNOTATOR, "cardinal_0000:x1"): ("group 2", "named"),
        (BOARD_ANNOTATOR, "cardinal_0003:x3"): ("", "discarded"),
        (PER_MAP_ANNOTATOR, "cardinal_0000:x0"): ("eye", "named"),
        (PER_MAP_ANNOTATOR, "cardinal_0000:x1"): ("eye", "named"),
    }
    expected = sorted(
        (
            who,
            row.category,
            row.activation_id,
            *special.get((who, row.activation_id), ("", "unnamed")),
        )
        for who in (BOARD_ANNOTATOR, PER_MAP_ANNOTATOR)
        for row in activations.itertuples()
    )
    got = namings[namings["annotator"].isin([BOARD_ANNOTATOR, PER_MAP_ANNOTATOR])]
    assert sorted(map(tuple, got.to_numpy().tolist())) == expected
