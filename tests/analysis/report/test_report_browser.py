"""report.html in a real headless Chromium: every picture opens, nothing breaks on bad input.

The study: toybirds with a cue planted in one class, a bundle whose maps sit on a bird part
(and, in the planted class, on the cue), named by the simulated annotators through the part
masks, analysed and written with the bundle's overlays as thumbnails. Screenshots of the
gallery, the explanations and the decisions to distrust go to test-artifacts/.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from analysis import analyze, load_namings, read_activations, write_report
from analysis.namers.simulated_annotators import simulate_bundle
from xnn_training.bundle.io import ActivationMap, BundleWriter, ExplainedImage
from xnn_training.data.toybirds import PARTS, make_toybirds
from xnn_training.maps.overlay import overlay

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ON_PART = ("wing", "body", "head", "tail")  # where each class's maps fall


def _heat(target: np.ndarray) -> np.ndarray:
    """A smooth map over ``target``: what a map on that region looks like, roughly."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(target.astype(np.float32), sigma=2.0)


@dataclass(frozen=True)
class Study:
    data: Path
    bundle: Path
    namings: Path
    planted: str  # the class that carries the cue


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    data = make_toybirds(root / "toybirds", classes=4, per_class=18, size=64, seed=3, shortcut="3")
    images = pd.read_csv(data / "images.csv", dtype=str, keep_default_na=False)
    label = {name: number for number, name in PARTS.items()}
    classes = sorted(images["category"].unique())
    writer = BundleWriter(root / "bundle", {"data": "../toybirds"})
    for row in images[images["split"] == "test"].itertuples():
        picture = Image.open(data / row.image_path).convert("RGB")
        mask = np.asarray(Image.open(data / row.mask_path))
        targets = [mask == label[ON_PART[classes.index(row.category)]]]
        if row.cue_path:  # the planted class: the cue carries most of the decision
            targets.insert(0, np.asarray(Image.open(data / row.cue_path)) > 0)
        shares = [0.7, 0.3] if len(targets) == 2 else [1.0]
        maps = []
        for rank, (target, share) in enumerate(zip(targets, shares, strict=True), start=1):
            heat = _heat(target)
            maps.append(ActivationMap(rank - 1, share, share, rank, heat, overlay(picture, heat)))
        writer.add(
            ExplainedImage(
                row.image_id, row.category, row.category, row.category, 1.0, picture, maps
            )
        )
    bundle = writer.finish()
    namings = simulate_bundle(bundle, data, annotators=5)
    namings.to_csv(root / "namings.csv", index=False)
    planted = json.loads((data / "toybirds.json").read_text())["shortcut"]["category"]
    return Study(data, bundle, root / "namings.csv", planted)


def _report(study: Study, out: Path, *, bundle=None, keep=None) -> tuple[Path, object]:
    activations = read_activations(study.bundle / "activations.csv")
    namings = load_namings([study.namings], activations)
    if keep is not None:
        namings = namings[namings["category"].isin(keep)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = analyze(activations, namings)
    path = write_report(results, out, bundle=study.bundle if bundle is None else bundle)
    return path, results


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    return page, dialogs


def _broken_images(page) -> list[str]:
    return page.evaluate(
        "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.alt)"
    )


def _screenshot(page, section: str, path: Path) -> None:
    box = page.locator(f"#{section}").bounding_box()
    clip = {"x": 0, "y": box["y"], "width": 1400, "height": min(box["height"], 2400)}
    page.screenshot(path=str(path), clip=clip, full_page=True)


def test_every_picture_opens_and_the_planted_class_is_first(study, browser, artifacts, tmp_path):
    path, results = _report(study, tmp_path / "report")
    page, dialogs = _open(browser, path)
    try:
        count = page.evaluate("() => document.images.length")
        thumbs = page.evaluate("() => document.querySelectorAll('.thumb img').length")
        assert thumbs > 100
        assert count > thumbs  # thumbnails and figures
        assert _broken_images(page) == []
        assert page.locator(".thumb .missing").count() == 0
        # The gallery's cards are the gallery table's, with its counts.
        cards = page.locator("#gallery .card")
        assert cards.count() == len(results.gallery)
        shown = sum(int(v) for v in cards.evaluate_all("cs => cs.map(c => c.dataset.activations)"))
        assert shown == int(results.gallery["activations"].sum())
        # The planted class tops the ranking and is flagged.
        first_row = page.locator("#distrust table tbody tr").first
        assert study.planted in first_row.inner_text()
        assert "flagged" in (first_row.get_attribute("class") or "")
        assert page.locator("#distrust .alarm").count() == 1
        for section in ("gallery", "explanations", "distrust"):
            _screenshot(page, section, artifacts / f"report-{section}.png")
        assert dialogs == []
    finally:
        page.close()


def test_a_bundle_whose_images_moved_gives_named_placeholders(study, browser, tmp_path):
    moved = tmp_path / "bundle"
    shutil.copytree(study.bundle, moved)
    shutil.rmtree(moved / "overlays")
    path, _results = _report(study, tmp_path / "report", bundle=moved)
    html = path.read_text()
    assert "were not found in the bundle" in html
    page, _dialogs = _open(browser, path)
    try:
        assert _broken_images(page) == []
        assert page.locator(".thumb img").count() == 0
        missing = page.locator(".thumb .missing")
        assert missing.count() > 50
        assert "overlays/" in missing.first.inner_text()
    finally:
        page.close()
    # A bundle that is not there at all: one note, no pictures, no broken page.
    path, _results = _report(study, tmp_path / "nowhere-report", bundle=tmp_path / "nowhere")
    assert "could not be read" in path.read_text()


def test_namings_of_some_categories_only(study, browser, artifacts, tmp_path):
    first = sorted(pd.read_csv(study.namings, dtype=str)["category"].unique())[0]
    path, results = _report(study, tmp_path / "report", keep=[first])
    page, _dialogs = _open(browser, path)
    try:
        assert _broken_images(page) == []
        assert page.locator("#gallery .note", has_text="No namings in this category").count() >= 1
        unnamed = results.distrust[results.distrust["distrusted_share"].isna()]
        assert len(unnamed) == len(results.categories) - 1
        _screenshot(page, "gallery", artifacts / "report-partial-gallery.png")
    finally:
        page.close()


def test_names_cannot_inject_markup(study, browser, tmp_path):
    namings = pd.read_csv(study.namings, dtype=str, keep_default_na=False)
    evil = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    namings.loc[namings["status"] == "named", "concept"] = evil
    namings.to_csv(tmp_path / "evil.csv", index=False)
    activations = read_activations(study.bundle / "activations.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = analyze(activations, load_namings([tmp_path / "evil.csv"], activations))
    path = write_report(results, tmp_path / "report", bundle=study.bundle)
    page, dialogs = _open(browser, path)
    try:
        assert page.locator("script").count() == 0
        assert _broken_images(page) == []
        assert dialogs == []
        assert page.get_by_text("onerror=alert(1)").count() > 0  # shown as text
    finally:
        page.close()


def test_an_aligned_xnn_shows_the_concept_each_x_feature_carries(study, browser, artifacts,
                                                                 tmp_path):  # fmt: skip
    activations = read_activations(study.bundle / "activations.csv")
    namings = load_namings([study.namings], activations)
    classes = sorted(activations["category"].unique())
    carried = {c: {0: ON_PART[i]} for i, c in enumerate(classes)}  # x1 stays free
    aligned_with = sorted(namings["annotator"].unique())[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = analyze(activations, namings, carried=carried, aligned_with=aligned_with)
    path = write_report(results, tmp_path / "report", bundle=study.bundle)
    page, dialogs = _open(browser, path)
    try:
        assert page.locator("#carried").is_visible()
        assert f"aligned with {aligned_with}'s concepts" in page.locator("#purity").inner_text()
        table = page.locator("#carried ~ table").first
        header = table.locator("thead th").all_inner_texts()
        assert header[:4] == ["category", "X-feature", "carries", "maps"]
        assert header[4] == aligned_with  # the annotator it was aligned with comes first
        rows = table.locator("tbody tr")
        shown = results.carried.drop_duplicates(["category", "x_feature"])
        assert rows.count() == len(shown)
        first = results.carried.iloc[0]
        mine = results.carried.query(
            "annotator == @aligned_with and category == @first.category "
            "and x_feature == @first.x_feature"
        ).iloc[0]
        cells = rows.first.locator("td").all_inner_texts()
        assert cells[2] == first["carries"]
        expected = ("" if pd.isna(mine["named_as_carried"])
                    else f"{mine['named_as_carried']:.2f} of ") + str(mine["named"])  # fmt: skip
        assert cells[4].startswith(expected)
        _screenshot(page, "purity", artifacts / "report-carried.png")
        assert dialogs == []
    finally:
        page.close()
    # A concept name or annotator name cannot inject markup either.
    evil = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = analyze(activations, namings, carried={classes[0]: {0: evil}}, aligned_with=evil)
    page, dialogs = _open(browser, write_report(results, tmp_path / "evil", bundle=study.bundle))
    try:
        assert page.locator("script").count() == 0
        assert dialogs == []
        assert page.get_by_text("onerror=alert(1)").count() > 0
    finally:
        page.close()
