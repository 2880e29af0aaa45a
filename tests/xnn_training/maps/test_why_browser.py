"""why.html in a real headless Chromium: every overlay opens, every image has its card, the
summary table and the skipped files are shown. A screenshot goes to test-artifacts/."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_why_html_shows_every_image_and_opens_every_overlay(toybirds_run, browser, artifacts,
                                                             tmp_path):  # fmt: skip
    folder = tmp_path / "images"
    folder.mkdir()
    table = pd.read_csv(toybirds_run.data / "images.csv").query("split == 'test'")
    for k, path in enumerate(table["image_path"]):
        shutil.copy(toybirds_run.data / path, folder / f"bird{k}.png")
    (folder / "broken.png").write_text("not an image")
    out = tmp_path / "why"
    assert main(["why", "--dnn", str(toybirds_run.dnn), "--xnn", str(toybirds_run.xnn),
                 str(folder), "--out", str(out), "--device", "cpu"]) == 0  # fmt: skip
    written = pd.read_csv(out / "why.csv", keep_default_na=False)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto((out / "why.html").resolve().as_uri())
        page.evaluate("() => document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
        page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
        broken = page.evaluate(
            "() => Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.alt)"
        )
        assert broken == []
        assert page.locator("img").count() == (written["overlay_path"] != "").sum()
        assert page.locator("#images .card").count() == written["image_path"].nunique()
        assert page.locator("#summary tbody tr").count() >= 1
        assert "broken.png" in page.locator("#skipped").inner_text()
        page.screenshot(path=str(artifacts / "why.png"), full_page=True)
    finally:
        page.close()
