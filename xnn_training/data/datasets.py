"""One data set interface for toybirds, CUB-200-2011 and any torchvision ImageFolder tree.

:func:`open_dataset` looks at a local directory, recognises its layout and returns an
:class:`ImageDataset`: a torch ``Dataset`` whose items are ``{"image": tensor, "label": int,
"image_id": str}``, with the class names in label order, and part annotations where the layout
has them (toybirds: a part mask per image; CUB: part locations and a bounding box).

Layouts, tried in this order:

- toybirds: ``toybirds.json`` at the top (see :mod:`xnn_training.data.toybirds`);
- CUB-200-2011: ``images.txt``, ``classes.txt``, ``image_class_labels.txt``,
  ``train_test_split.txt`` and ``images/`` (``bounding_boxes.txt`` and ``parts/`` optional);
  the directory may also be the parent of ``CUB_200_2011/``;
- ImageFolder: ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (``val/`` is taken as the
  test split when there is no ``test/``), or a single ``<class>/*.jpg`` tree, split
  deterministically (every 5th image of each class, in name order, is a test image).

Splits: ``train``, ``test`` and ``feedback``, the images whose maps annotators name to correct
a classifier (``xnaming train dnn --from ... --feedback ...``), kept apart from train so the
correction is measured on images it never saw. toybirds makes its own (``--feedback-share``);
for CUB-200 and ImageFolder the user names it once with :func:`write_feedback_split` (``xnaming
data feedback``: a share of each class's training images with a seed, or a list of image ids),
which writes :data:`FEEDBACK_LIST` into the data set's directory; every stage that opens the
data set then sees the same three splits.

Images are resized to a square (no crop), so an activation map covers the whole image the
annotator sees, and normalised with the ImageNet statistics torchvision's weights expect.
Nothing is ever downloaded.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.datasets.folder import IMG_EXTENSIONS

__all__ = [
    "FEEDBACK_LIST",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SPLITS",
    "ImageDataset",
    "Sample",
    "detect_layout",
    "image_transform",
    "open_dataset",
    "write_feedback_split",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SPLITS = ("train", "test", "feedback")
FEEDBACK_LIST = "feedback_split.txt"
"""The feedback split of a CUB-200 or ImageFolder data set: one image id a line, in its folder."""


@dataclass(frozen=True)
class Sample:
    """One image of a data set. Paths are absolute; ``parts`` maps a part name to ``(x, y)``."""

    image_id: str
    path: Path
    label: int
    split: str
    mask_path: Path | None = None
    bbox: tuple[float, float, float, float] | None = None
    parts: dict[str, tuple[float, float]] = field(default_factory=dict)


def image_transform(size: int, train: bool = False) -> transforms.Compose:
    """Resize to ``size`` x ``size``, (training only: random horizontal flip), normalise."""
    steps: list = [transforms.Resize((size, size))]
    if train:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return transforms.Compose(steps)


class ImageDataset(Dataset):
    """Images, labels, ids and (where known) part annotations of one split of a data set.

    Build it with :func:`open_dataset`. Items are dicts ``{"image", "label", "image_id"}``,
    which torch's default collate batches into a tensor, a tensor and a list of strings.
    """

    def __init__(
        self,
        root: Path,
        layout: str,
        classes: Sequence[str],
        samples: Sequence[Sample],
        transform=None,
        part_names: dict[int, str] | None = None,
    ) -> None:
        self.root = root
        self.layout = layout
        self.classes = list(classes)
        self.samples = list(samples)
        self.transform = transform
        self.part_names = part_names or {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, object]:
        sample = self.samples[index]
        with Image.open(sample.path) as handle:
            image = handle.convert("RGB")
        tensor = self.transform(image) if self.transform else transforms.functional.to_tensor(image)
        return {"image": tensor, "label": sample.label, "image_id": sample.image_id}

    @property
    def labels(self) -> torch.Tensor:
        """The label of every sample, in order."""
        return torch.tensor([sample.label for sample in self.samples], dtype=torch.long)

    def part_mask(self, index: int) -> np.ndarray | None:
        """The part mask (H x W, labels of ``part_names``) of sample ``index``, or ``None``."""
        path = self.samples[index].mask_path
        return None if path is None else np.asarray(Image.open(path), dtype=np.uint8)

    @cached_property  # asked for every item the loader makes: look once
    def has_part_masks(self) -> bool:
        """Whether every image has a part mask (toybirds), so maps can be told which part
        covers their hot spot, not only which part's location it is near."""
        return bool(self.samples) and all(s.mask_path is not None for s in self.samples)

    @property
    def located_parts(self) -> tuple[str, ...]:
        """The parts :meth:`part_locations` can name, in label order (label 0, toybirds'
        background, is not a part); empty for a layout without part annotations."""
        return tuple(name for label, name in sorted(self.part_names.items()) if label > 0)

    def part_locations(self, index: int) -> dict[str, tuple[float, float]]:
        """Where the parts of sample ``index`` are: part name -> (x, y) as fractions of the
        image's width and height (so they hold at any input size).

        CUB-200: its visible annotated part locations. toybirds: the centre of each part's
        mask. Parts the image does not show are absent; ``{}`` without part annotations.
        """
        sample = self.samples[index]
        if sample.parts:
            with Image.open(sample.path) as handle:
                width, height = handle.size
            return {name: (x / width, y / height) for name, (x, y) in sample.parts.items()}
        mask = self.part_mask(index)
        if mask is None:
            return {}
        height, width = mask.shape
        located = {}
        for label, name in self.part_names.items():
            if label == 0:  # the background is not a part (and the largest region)
                continue
            ys, xs = np.nonzero(mask == label)
            if len(xs):
                located[name] = (float(xs.mean() + 0.5) / width, float(ys.mean() + 0.5) / height)
        return located

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.layout}, {self.root}, {len(self.samples)} images, "
            f"{len(self.classes)} classes)"
        )


def detect_layout(root: str | Path) -> tuple[str, Path]:
    """Say which layout ``root`` holds: ``("toybirds" | "cub" | "imagefolder", directory)``.

    Raises
    ------
    FileNotFoundError
        When ``root`` does not exist or is not a directory.
    ValueError
        When it holds none of the known layouts (the message lists what each one needs).
    """
    path = Path(root)
    if not path.is_dir():
        raise FileNotFoundError(f"data: {path} is not a directory")
    if (path / "toybirds.json").is_file():
        return "toybirds", path
    for candidate in (path, path / "CUB_200_2011"):
        if (candidate / "images.txt").is_file() or (candidate / "classes.txt").is_file():
            return "cub", candidate
    if any(child.is_dir() and not child.name.startswith(".") for child in path.iterdir()):
        return "imagefolder", path
    raise ValueError(
        f"data: {path} holds no known data set layout. Expected toybirds.json (xnaming data "
        "toybirds), the CUB-200-2011 files (images.txt, classes.txt, image_class_labels.txt, "
        "train_test_split.txt, images/), or an ImageFolder tree (<class>/<image> folders, "
        "optionally under train/ and test/)."
    )


def open_dataset(
    root: str | Path,
    split: str = "train",
    classes: Sequence[str] | None = None,
    size: int = 64,
    train_transform: bool = False,
) -> ImageDataset:
    """Open one split of a local data set.

    Parameters
    ----------
    root
        The data set directory (toybirds, CUB-200-2011 or ImageFolder; see the module doc).
    split
        ``"train"``, ``"test"`` or ``"feedback"`` (see the module's docstring).
    classes
        Keep only these classes, relabelled 0.. in the order given. Each entry is a class name
        or, for CUB, its number (``"17"`` or ``"017"`` for ``017.Cardinal``). ``None``: all.
    size
        Images are resized to ``size`` x ``size``.
    train_transform
        Add training augmentation (random horizontal flip).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing directory or files, malformed lines, unknown classes, a class without images.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    layout, path = detect_layout(root)
    reader = {"toybirds": _read_toybirds, "cub": _read_cub, "imagefolder": _read_imagefolder}
    all_classes, samples, part_names = reader[layout](path)
    if layout != "toybirds":
        samples = _with_feedback(path, samples)
    chosen = _select_classes(all_classes, classes, layout, path)
    relabel = {old: new for new, old in enumerate(chosen)}
    kept = [
        Sample(**{**sample.__dict__, "label": relabel[sample.label]})
        for sample in samples
        if sample.label in relabel
    ]
    counts = np.bincount([s.label for s in kept if s.split == split], minlength=len(chosen))
    empty = [all_classes[chosen[i]] for i in np.flatnonzero(counts == 0)]
    if split == "feedback" and not counts.sum():
        how = (
            "regenerate it with `xnaming data toybirds --feedback-share 0.2`"
            if layout == "toybirds"
            else "name one with `xnaming data feedback`"
        )
        raise ValueError(f"data: {path} has no feedback split; {how}")
    if empty and split != "feedback":  # a feedback split may leave classes out
        raise ValueError(
            f"data: {path}: no {split} images for class(es) {', '.join(empty)}; add images or "
            "leave these classes out with --classes"
        )
    transform = image_transform(size, train=train_transform)
    names = [all_classes[i] for i in chosen]
    split_samples = [s for s in kept if s.split == split]
    return ImageDataset(path, layout, names, split_samples, transform, part_names)


def available_splits(root: str | Path) -> tuple[str, ...]:
    """The splits of :data:`SPLITS` that ``root`` has: train and test, and feedback when the
    data set has one (so a reader of every image, such as the part masks', finds them all)."""
    layout, path = detect_layout(root)
    if layout == "toybirds":
        with (path / "images.csv").open(newline="") as handle:
            present = {row["split"] for row in csv.DictReader(handle)}
    else:
        present = {"train", "test"} | ({"feedback"} if (path / FEEDBACK_LIST).is_file() else set())
    return tuple(split for split in SPLITS if split in present)


def write_feedback_split(
    root: str | Path,
    *,
    share: float | None = None,
    seed: int = 0,
    ids: Sequence[str] | None = None,
) -> Path:
    """Name the feedback split of a CUB-200 or ImageFolder data set: write :data:`FEEDBACK_LIST`.

    Parameters
    ----------
    root
        The data set directory.
    share
        Take this share of each class's training images (rounded, at least one image of a class
        with two or more), drawn with ``seed``.
    seed
        Seeds the draw of ``share``.
    ids
        Or: exactly these training images (ids as the data set names them).

    Returns
    -------
    Path
        The list written (one image id a line, in data set order).

    Raises
    ------
    ValueError
        A toybirds data set (it makes its own), neither or both of ``share`` and ``ids``, a share
        outside (0, 1), ids that are not training images.
    """
    layout, path = detect_layout(root)
    if layout == "toybirds":
        raise ValueError(
            f"data: {path} is toybirds, which makes its own feedback split: "
            "`xnaming data toybirds --feedback-share SHARE`"
        )
    if (share is None) == (ids is None):
        raise ValueError("feedback split: give either a share of train (with a seed) or a list")
    reader = {"cub": _read_cub, "imagefolder": _read_imagefolder}[layout]
    train = [s for s in reader(path)[1] if s.split == "train"]
    if ids is not None:
        known = {s.image_id for s in train}
        wanted = {str(i).strip() for i in ids if str(i).strip()}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(
                f"feedback list: {len(unknown)} id(s) are not training images of {path}, "
                f"e.g. {unknown[0]!r}"
            )
        chosen = wanted
    else:
        if not 0 < share < 1:
            raise ValueError(f"share: expected a number in (0, 1), got {share}")
        rng = np.random.default_rng(seed)
        chosen = set()
        for label in sorted({s.label for s in train}):
            members = [s.image_id for s in train if s.label == label]
            count = min(len(members) - 1, max(1, round(share * len(members))))
            chosen.update(rng.choice(members, size=max(count, 0), replace=False).tolist())
    out = path / FEEDBACK_LIST
    out.write_text("".join(f"{s.image_id}\n" for s in train if s.image_id in chosen))
    return out


def _with_feedback(path: Path, samples: list[Sample]) -> list[Sample]:
    """Move the training images :data:`FEEDBACK_LIST` names (if there is one) to ``feedback``."""
    listed = path / FEEDBACK_LIST
    if not listed.is_file():
        return samples
    ids = {line.strip() for line in listed.read_text().splitlines() if line.strip()}
    moved = [
        Sample(**{**s.__dict__, "split": "feedback"}) if s.image_id in ids and s.split == "train"
        else s
        for s in samples
    ]  # fmt: skip
    found = sum(s.split == "feedback" for s in moved)
    if found != len(ids):
        raise ValueError(
            f"data: {listed} names {len(ids) - found} image(s) that are not training images; "
            "name the split again with `xnaming data feedback`"
        )
    return moved


def _select_classes(
    all_classes: list[str], wanted: Sequence[str] | None, layout: str, path: Path
) -> list[int]:
    if wanted is None:
        return list(range(len(all_classes)))
    index = {name: i for i, name in enumerate(all_classes)}
    if layout == "cub":  # CUB names start with their number: "017.Cardinal"
        for i, name in enumerate(all_classes):
            number = name.split(".", 1)[0]
            if number.isdigit():
                index.setdefault(str(int(number)), i)
                index.setdefault(number, i)
    chosen, unknown = [], []
    for name in wanted:
        key = str(name).strip()
        if key in index:
            chosen.append(index[key])
        else:
            unknown.append(key)
    if unknown:
        shown = ", ".join(all_classes[:8]) + (" ..." if len(all_classes) > 8 else "")
        raise ValueError(
            f"classes: {', '.join(unknown)} not in the data set {path} (its classes: {shown})"
        )
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"classes: a class is named twice in {list(wanted)}")
    return chosen


def _read_toybirds(path: Path) -> tuple[list[str], list[Sample], dict[int, str]]:
    meta = json.loads((path / "toybirds.json").read_text())
    classes = [entry["name"] for entry in meta["classes"]]
    label_of = {name: i for i, name in enumerate(classes)}
    samples = []
    with (path / "images.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            samples.append(
                Sample(
                    image_id=row["image_id"],
                    path=path / row["image_path"],
                    label=label_of[row["category"]],
                    split=row["split"],
                    mask_path=path / row["mask_path"],
                )
            )
    parts = {int(label): name for label, name in meta["parts"].items()}
    return classes, samples, parts


def _read_table(path: Path, columns: int, required: bool = True) -> list[list[str]]:
    """Rows of a whitespace-separated CUB file; the last column may contain spaces."""
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"data: {path} is missing (part of the CUB-200-2011 layout)")
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=columns - 1)
        if len(fields) != columns:
            raise ValueError(
                f"data: {path}, line {number}: expected {columns} fields, got {line!r}"
            )
        rows.append(fields)
    return rows


def _read_cub(path: Path) -> tuple[list[str], list[Sample], dict[int, str]]:
    class_rows = _read_table(path / "classes.txt", 2)
    class_ids = [row[0] for row in class_rows]
    classes = [row[1] for row in class_rows]
    label_of = {class_id: i for i, class_id in enumerate(class_ids)}
    images = dict(_read_table(path / "images.txt", 2))
    labels = dict(_read_table(path / "image_class_labels.txt", 2))
    splits = dict(_read_table(path / "train_test_split.txt", 2))
    boxes = {row[0]: row[1:] for row in _read_table(path / "bounding_boxes.txt", 5, False)}
    part_names = {int(i): name for i, name in _read_table(path / "parts" / "parts.txt", 2, False)}
    part_locs: dict[str, dict[str, tuple[float, float]]] = {}
    for image_id, part_id, x, y, visible in _read_table(path / "parts" / "part_locs.txt", 5, False):
        if visible.strip() == "1":
            name = part_names.get(int(part_id), part_id)
            part_locs.setdefault(image_id, {})[name] = (float(x), float(y))
    samples = []
    for image_id, relative in images.items():
        where = f"{path / 'images.txt'}: image {image_id}"
        if image_id not in labels or labels[image_id] not in label_of:
            raise ValueError(f"data: {where} has no valid class in image_class_labels.txt")
        if splits.get(image_id) not in ("0", "1"):
            raise ValueError(f"data: {where} has no 0/1 entry in train_test_split.txt")
        box = boxes.get(image_id)
        samples.append(
            Sample(
                image_id=image_id,
                path=path / "images" / relative,
                label=label_of[labels[image_id]],
                split="train" if splits[image_id] == "1" else "test",
                bbox=tuple(float(v) for v in box) if box else None,
                parts=part_locs.get(image_id, {}),
            )
        )
    missing = [s.path for s in samples if not s.path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"data: {len(missing)} image(s) listed in {path / 'images.txt'} are missing, "
            f"e.g. {missing[0]}"
        )
    return classes, samples, part_names


def _class_images(folder: Path) -> dict[str, list[Path]]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    return {
        name: sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in IMG_EXTENSIONS)
        for name in classes
    }


def _read_imagefolder(path: Path) -> tuple[list[str], list[Sample], dict[int, str]]:
    test_dir = next((path / d for d in ("test", "val") if (path / d).is_dir()), None)
    if (path / "train").is_dir() and test_dir is not None:
        per_split = {"train": _class_images(path / "train"), "test": _class_images(test_dir)}
        if set(per_split["train"]) != set(per_split["test"]):
            raise ValueError(
                f"data: {path}/train and {test_dir} hold different classes: "
                f"{sorted(set(per_split['train']) ^ set(per_split['test']))}"
            )
        classes = sorted(per_split["train"])
        pairs = [
            (split, name, image)
            for split, tree in per_split.items()
            for name in classes
            for image in tree[name]
        ]
    else:
        tree = _class_images(path)
        classes = sorted(tree)
        # Deterministic split: every 5th image of a class (in name order) is a test image.
        pairs = [
            ("test" if i % 5 == 4 else "train", name, image)
            for name in classes
            for i, image in enumerate(tree[name])
        ]
    label_of = {name: i for i, name in enumerate(classes)}
    samples = [
        Sample(
            image_id=image.relative_to(path).with_suffix("").as_posix(),
            path=image,
            label=label_of[name],
            split=split,
        )
        for split, name, image in pairs
    ]
    return classes, samples, {}
