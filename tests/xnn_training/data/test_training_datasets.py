"""Data sets load: a tiny fake CUB tree, ImageFolder trees, toybirds; bad input is named."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xnn_training.data.datasets import detect_layout, open_dataset
from xnn_training.data.toybirds import PARTS, make_toybirds
from xnn_training.maps.explain import part_points


def _png(path: Path, colour=(200, 10, 10), size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def make_fake_cub(root: Path, classes=("001.Black_footed_Albatross", "002.Laysan_Albatross",
                                       "003.Sooty_Albatross"), per_class=3) -> Path:  # fmt: skip
    """A CUB-200-2011 tree in miniature, in the real files' formats."""
    images, labels, split, boxes, locs = [], [], [], [], []
    image_id = 0
    for class_id, name in enumerate(classes, start=1):
        for i in range(per_class):
            image_id += 1
            relative = f"{name}/{name.split('.')[1]}_{i:04d}_{image_id}.jpg"
            _png(root / "images" / relative, (class_id * 60, 20, 20))
            images.append(f"{image_id} {relative}")
            labels.append(f"{image_id} {class_id}")
            split.append(f"{image_id} {0 if i == 0 else 1}")
            boxes.append(f"{image_id} 2.0 3.0 20.0 15.0")
            locs += [f"{image_id} 1 10.0 12.0 1", f"{image_id} 2 0.0 0.0 0"]
    (root / "images.txt").write_text("\n".join(images) + "\n")
    (root / "classes.txt").write_text(
        "\n".join(f"{i} {n}" for i, n in enumerate(classes, start=1)) + "\n"
    )
    (root / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (root / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (root / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    (root / "parts").mkdir()
    (root / "parts" / "parts.txt").write_text("1 back\n2 beak\n")
    (root / "parts" / "part_locs.txt").write_text("\n".join(locs) + "\n")
    return root


def test_fake_cub_loads_with_parts_and_class_subset(tmp_path):
    root = make_fake_cub(tmp_path / "CUB_200_2011")
    assert detect_layout(tmp_path) == ("cub", root)  # the parent directory works too
    train = open_dataset(tmp_path, "train", size=32)
    test = open_dataset(tmp_path, "test", size=32)
    assert (len(train), len(test)) == (6, 3)
    assert train.classes[0] == "001.Black_footed_Albatross"
    item = train[0]
    assert item["image"].shape == (3, 32, 32)
    assert item["label"] == 0
    assert train.samples[0].bbox == (2.0, 3.0, 20.0, 15.0)
    assert train.samples[0].parts == {"back": (10.0, 12.0)}  # invisible parts left out
    # Part locations as fractions of the image (it is 40 x 30 here): at any input size
    assert train.located_parts == ("back", "beak")
    assert train.part_locations(0) == {"back": (10.0 / 40, 12.0 / 30)}
    # What explain hands embed_maps: one row per located part, NaN for the invisible beak
    points = part_points(train, 0)
    np.testing.assert_allclose(points[0].numpy(), [10.0 / 40, 12.0 / 30])
    assert torch.isnan(points[1]).all()
    subset = open_dataset(root, "train", classes=["3", "001.Black_footed_Albatross"], size=32)
    assert subset.classes == ["003.Sooty_Albatross", "001.Black_footed_Albatross"]
    assert subset.labels.tolist() == [1, 1, 0, 0]


def test_cub_errors_name_the_file_and_line(tmp_path):
    root = make_fake_cub(tmp_path)
    (root / "train_test_split.txt").write_text("1 1\n2\n")
    with pytest.raises(ValueError, match=r"train_test_split.txt, line 2"):
        open_dataset(root)
    (root / "train_test_split.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"train_test_split.txt is missing"):
        open_dataset(root)


def test_unknown_and_empty_classes_are_named(tmp_path):
    root = make_fake_cub(tmp_path)
    with pytest.raises(ValueError, match="Dodo not in the data set"):
        open_dataset(root, classes=["Dodo"])
    lines = (root / "train_test_split.txt").read_text().splitlines()
    # class 3's only test image becomes a training image: class 3 has no test images
    (root / "train_test_split.txt").write_text(
        "\n".join(line[:-1] + "1" if line.startswith("7 ") else line for line in lines)
    )
    with pytest.raises(ValueError, match=r"no test images for class.*003.Sooty_Albatross"):
        open_dataset(root, "test")


def test_imagefolder_with_and_without_splits(tmp_path):
    for split in ("train", "val"):
        for name in ("cat", "dog"):
            for i in range(2):
                _png(tmp_path / "a" / split / name / f"{i}.png")
    dataset = open_dataset(tmp_path / "a", "test", size=16)
    assert dataset.layout == "imagefolder"
    assert dataset.classes == ["cat", "dog"]
    assert (dataset.located_parts, dataset.part_locations(0)) == ((), {})  # no part columns
    assert [s.image_id for s in dataset.samples] == ["val/cat/0", "val/cat/1", "val/dog/0",
                                                     "val/dog/1"]  # fmt: skip
    for name in ("cat", "dog"):
        for i in range(10):
            _png(tmp_path / "b" / name / f"{i:02d}.jpg")
    train, test = open_dataset(tmp_path / "b", "train"), open_dataset(tmp_path / "b", "test")
    assert (len(train), len(test)) == (16, 4)
    assert {s.image_id for s in test.samples} == {"cat/04", "cat/09", "dog/04", "dog/09"}
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=4)))
    assert batch["image"].shape == (4, 3, 64, 64)
    assert isinstance(batch["image_id"][0], str)


def test_empty_imagefolder_class_and_bad_directories(tmp_path):
    _png(tmp_path / "c" / "cat" / "0.png")
    (tmp_path / "c" / "dog").mkdir()
    with pytest.raises(ValueError, match="dog"):
        open_dataset(tmp_path / "c", "train")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no known data set layout"):
        open_dataset(tmp_path / "flat")
    with pytest.raises(ValueError, match="split"):
        open_dataset(tmp_path / "c", "validation")


def test_toybirds_loads_with_part_masks(tmp_path):
    root = make_toybirds(tmp_path / "tb", classes=3, per_class=3, size=32, seed=1)
    train, test = open_dataset(root, "train", size=32), open_dataset(root, "test", size=32)
    assert (len(train), len(test)) == (6, 3)
    assert train.layout == "toybirds"
    mask = train.part_mask(0)
    assert mask.shape == (32, 32)
    assert mask.max() <= max(PARTS)
    assert train.part_names[3] == "eye"
    assert test[0]["image"].shape == (3, 32, 32)
    # The centre of each part's mask is its location; parts the image does not show are absent
    located = train.part_locations(0)
    assert set(located) <= set(train.located_parts)
    assert "background" not in train.located_parts
    for name, (x, y) in located.items():
        label = next(k for k, v in train.part_names.items() if v == name)
        ys, xs = np.nonzero(mask == label)
        assert (x, y) == pytest.approx(((xs.mean() + 0.5) / 32, (ys.mean() + 0.5) / 32))
    assert {"body", "head"} <= set(located)


def test_toybirds_is_deterministic_and_complete(tmp_path):
    a = make_toybirds(tmp_path / "a", classes=2, per_class=4, size=48, seed=3)
    b = make_toybirds(tmp_path / "b", classes=2, per_class=4, size=48, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 16
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    c = make_toybirds(tmp_path / "c", classes=2, per_class=4, size=48, seed=4)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)
    import pandas as pd

    parts = pd.read_csv(a / "parts.csv", dtype={"image_id": str})
    # every bird shows a body, a head and feet; masks agree with the table
    assert set(parts.groupby("image_id")["part"].apply(set).iloc[0]) >= {"body", "head", "feet"}
    images = pd.read_csv(a / "images.csv", dtype={"image_id": str})
    first = images.iloc[0]
    mask = np.asarray(Image.open(a / first["mask_path"]))
    rows = parts[parts["image_id"] == first["image_id"]]
    assert dict(zip(rows["label"], rows["pixels"], strict=True)) == {
        int(v): int((mask == v).sum()) for v in np.unique(mask) if v
    }


def test_toybirds_refuses_a_foreign_directory_and_bad_arguments(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a toybirds data set"):
        make_toybirds(tmp_path / "x", classes=2, per_class=2)
    with pytest.raises(ValueError, match="classes"):
        make_toybirds(tmp_path / "y", classes=1)
    with pytest.raises(ValueError, match="size"):
        make_toybirds(tmp_path / "y", size=8)
