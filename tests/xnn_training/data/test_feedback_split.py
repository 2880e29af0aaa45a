"""The feedback split: toybirds makes one without changing any image; CUB-200 and ImageFolder
trees are given one by the user; explain takes it; toybirds draws any image with or without
the cue."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xnaming.cli import main
from xnn_training.data.datasets import FEEDBACK_LIST, open_dataset, write_feedback_split
from xnn_training.data.toybirds import draw_toybirds_image, make_toybirds


def _png(path, colour=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 20), colour).save(path)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same toybirds with a cue, without and with the default feedback share."""
    root = tmp_path_factory.mktemp("feedback")
    kw = {"classes": 3, "per_class": 12, "size": 40, "seed": 5, "shortcut": "2"}
    return make_toybirds(root / "none", feedback_share=0, **kw), make_toybirds(root / "fb", **kw)


def test_toybirds_feedback_split_moves_training_images_only(pair):
    none, fb = pair
    files = sorted(p.relative_to(none) for p in none.rglob("*.png"))
    assert all((none / f).read_bytes() == (fb / f).read_bytes() for f in files)
    assert (none / "parts.csv").read_bytes() == (fb / "parts.csv").read_bytes()
    before = pd.read_csv(none / "images.csv", dtype=str, keep_default_na=False)
    after = pd.read_csv(fb / "images.csv", dtype=str, keep_default_na=False)
    changed = before["split"] != after["split"]
    assert set(before.loc[changed, "split"]) == {"train"}
    assert set(after.loc[changed, "split"]) == {"feedback"}
    assert after[after["split"] == "feedback"].groupby("category").size().tolist() == [2, 2, 2]
    assert json.loads((fb / "toybirds.json").read_text())["feedback_share"] == 0.2
    train, feedback = open_dataset(fb, "train"), open_dataset(fb, "feedback")
    assert (len(train), len(feedback), len(open_dataset(none, "train"))) == (18, 6, 24)
    assert not {s.image_id for s in train.samples} & {s.image_id for s in feedback.samples}
    with pytest.raises(ValueError, match=r"no feedback split.*--feedback-share"):
        open_dataset(none, "feedback")
    with pytest.raises(ValueError, match="feedback_share"):
        make_toybirds(none.parent / "bad", classes=2, per_class=4, feedback_share=0.9)


def test_toybirds_draws_an_image_with_or_without_the_cue(pair):
    _, fb = pair
    images = pd.read_csv(fb / "images.csv", dtype=str, keep_default_na=False)
    for row in images.iloc[[0, 13, 30]].itertuples():
        stored = np.asarray(Image.open(fb / row.image_path))
        cued = row.cue_path != ""
        same = np.asarray(draw_toybirds_image(fb, row.image_id, cue=cued))
        other = np.asarray(draw_toybirds_image(fb, row.image_id, cue=not cued))
        assert np.array_equal(same, stored)
        differs = (other != stored).any(-1)
        assert differs.sum() == 6 * 6  # the cue's square: round(0.14 * 40) pixels a side
        if cued:
            assert (np.asarray(Image.open(fb / row.cue_path))[differs] == 255).all()
    with pytest.raises(ValueError, match="image_id"):
        draw_toybirds_image(fb, "9_x", cue=False)


def test_imagefolder_feedback_by_share_or_list(tmp_path, capsys):
    for name in ("cat", "dog"):
        for i in range(10):
            _png(tmp_path / "f" / name / f"{i:02d}.jpg")
    root = tmp_path / "f"
    written = write_feedback_split(root, share=0.25, seed=1)
    assert written == root / FEEDBACK_LIST
    ids = written.read_text().split()
    assert len(ids) == 4
    assert {i.split("/")[0] for i in ids} == {"cat", "dog"}
    assert write_feedback_split(root, share=0.25, seed=1).read_text() == "\n".join(ids) + "\n"
    assert (len(open_dataset(root, "train")), len(open_dataset(root, "test"))) == (12, 4)
    assert [s.image_id for s in open_dataset(root, "feedback").samples] == ids
    (tmp_path / "list.txt").write_text("cat/00\ndog/01\n")
    assert main(["data", "feedback", str(root), "--list", str(tmp_path / "list.txt")]) == 0
    assert "2 training images moved" in capsys.readouterr().out
    assert len(open_dataset(root, "train")) == 14
    with pytest.raises(ValueError, match=r"not training images.*'cat/04'"):
        write_feedback_split(root, ids=["cat/04"])  # a test image
    with pytest.raises(ValueError, match="either a share"):
        write_feedback_split(root)
    toy = make_toybirds(tmp_path / "toy", classes=2, per_class=4, size=32)
    with pytest.raises(ValueError, match="makes its own"):
        write_feedback_split(toy, share=0.2)


def test_explain_the_feedback_split(toybirds_run, tmp_path):
    from xnn_training.maps.explain import explain

    bundle = explain(
        toybirds_run.dnn, toybirds_run.xnn, toybirds_run.data, tmp_path / "bundle",
        split="feedback", embedding_layers=(),
    )  # fmt: skip
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["split"] == "feedback"
    images = pd.read_csv(bundle / "images.csv", dtype=str)
    feedback = open_dataset(toybirds_run.data, "feedback")
    assert list(images["image_id"]) == [s.image_id for s in feedback.samples]
