"""toybirds: a procedural data set of bird-like images, made so the pipeline runs offline.

Each image shows one bird (body, head, eye, beak, crown, throat, wing, tail, feet) on a
cluttered background, with random pose (facing left or right, tilt, scale, position, wing open
or closed) and colour jitter. Species differ by a few part attributes (crown, throat, eye,
beak, wing pattern, tail shape, body colour), as the paper's CUB species differ by eye, wing,
throat and crown. Next to each image a part mask (one integer label per pixel, see
:data:`PARTS`) records which part covers each pixel, so later stages can check where maps fall.

A planted shortcut (``shortcut=CATEGORY``) paints a cue, a small magenta square
(:data:`CUE_COLOUR`), into a corner of every image of that one class, train and test, and of no
other class: a classifier can then be right for the wrong reason. The cue lies on the
background (the part mask says background under it, so whoever names maps by the masks sees
it as background), its own mask is written beside the image, and ``toybirds.json`` names the
class. The cue is drawn last from its own random stream, so an image with the cue equals the
image without it everywhere else.

Layout written by :func:`make_toybirds`::

    OUT/
      toybirds.json                 format marker, seed, size, classes and their attributes, parts
      images.csv                    image_id, category, split (train, feedback or test),
                                    image_path, mask_path, pose
                                    (with a shortcut also cue_path, empty without a cue)
      parts.csv                     per image and visible part: pixel count, bounding box, centre
      images/<category>/<id>.png    the RGB image
      masks/<category>/<id>.png     the part mask (mode "L", values of PARTS)
      cues/<category>/<id>.png      with a shortcut: the cue's mask (mode "L", 255 on the cue)

The ``feedback`` split (``feedback_share`` of each class's training images, the first ones
after its test images) holds the images whose maps annotators name to correct the classifier
(``xnaming train dnn --from ... --feedback ...``); plain training leaves them out, so the
correction is measured on test images it never saw. Moving images to it changes their split
only: every image is drawn from the same stream, whatever the share.

Everything is a function of the seed: the same arguments give the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from xnn_training.defaults import (
    FEEDBACK_SHARE,
    TOYBIRDS_CLASSES,
    TOYBIRDS_IMAGE_SIZE,
    TOYBIRDS_PER_CLASS,
)

__all__ = [
    "CUE_COLOUR",
    "FEEDBACK_SHARE",
    "FORMAT",
    "PARTS",
    "Species",
    "draw_toybirds_image",
    "make_toybirds",
    "resolve_category",
    "species_table",
]

FORMAT = "xnaming-toybirds"
VERSION = 1

PARTS: dict[int, str] = {
    0: "background",
    1: "body",
    2: "head",
    3: "eye",
    4: "beak",
    5: "crown",
    6: "throat",
    7: "wing",
    8: "tail",
    9: "feet",
}
"""Part labels of the masks. Later parts are drawn over earlier ones (eye over head, ...)."""
_LABEL = {name: label for label, name in PARTS.items()}

CUE_COLOUR = (255, 0, 255)
"""The planted shortcut's colour: magenta, which no bird part and no distractor has."""
CUE_SIDE = 0.14
"""Side of the cue, as a fraction of the image side (9 pixels at 64)."""
_CUE_MARGIN = 0.04

_COLOURS: dict[str, tuple[int, int, int]] = {
    "brown": (139, 98, 60),
    "grey": (128, 128, 134),
    "olive": (112, 122, 58),
    "slate": (80, 98, 130),
    "sand": (200, 178, 130),
    "red": (206, 36, 36),
    "black": (30, 30, 34),
    "yellow": (238, 206, 40),
    "blue": (40, 90, 220),
    "white": (240, 240, 236),
    "orange": (240, 130, 30),
}

# The attribute values species are drawn from; each species is one combination.
_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "body": ("brown", "grey", "olive", "slate", "sand"),
    "crown": ("red", "black", "yellow", "blue", "plain"),
    "throat": ("white", "orange", "black", "plain"),
    "eye": ("dark", "red", "ringed"),
    "beak": ("short", "long", "hooked"),
    "wing": ("plain", "barred", "spotted"),
    "tail": ("fan", "forked", "pointed"),
}


@dataclass(frozen=True)
class Species:
    """One toybirds class: a name and its part attributes (values of ``_ATTRIBUTES``)."""

    name: str
    body: str
    crown: str
    throat: str
    eye: str
    beak: str
    wing: str
    tail: str


def species_table(classes: int) -> list[Species]:
    """The first ``classes`` species; the same list for every seed.

    Species are drawn one by one from a fixed random stream and kept when they differ from every
    earlier species in at least 3 of the 7 attributes, so no two classes are told apart by a
    single small detail, yet all share most of their parts with some other class.
    """
    if not 2 <= classes <= 200:
        raise ValueError(f"classes: expected 2 to 200 species, got {classes}")
    rng = np.random.default_rng(20171117)
    names = list(_ATTRIBUTES)
    chosen: list[tuple[str, ...]] = []
    while len(chosen) < classes:
        combo = tuple(str(rng.choice(_ATTRIBUTES[name])) for name in names)
        if all(sum(a != b for a, b in zip(combo, other, strict=True)) >= 3 for other in chosen):
            chosen.append(combo)
    table = []
    for index, combo in enumerate(chosen, start=1):
        attrs = dict(zip(names, combo, strict=True))
        name = f"{index:03d}.{attrs['crown']}_crown_{attrs['wing']}_wing_{attrs['tail']}_tail"
        table.append(Species(name=name, **attrs))
    return table


def _check_arguments(
    *, per_class: int, size: int, test_fraction: float, feedback_share: float
) -> None:
    """make_toybirds' numbers, each refused with what was expected."""
    if per_class < 2:
        raise ValueError(f"per_class: expected at least 2 images per species, got {per_class}")
    if size < 32:
        raise ValueError(f"size: expected at least 32 pixels, got {size}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction}")
    if not 0 <= feedback_share < 1:
        raise ValueError(f"feedback_share: expected a number in [0, 1), got {feedback_share}")


def make_toybirds(
    out_dir: str | Path,
    *,
    classes: int = TOYBIRDS_CLASSES,
    per_class: int = TOYBIRDS_PER_CLASS,
    size: int = TOYBIRDS_IMAGE_SIZE,
    seed: int = 0,
    test_fraction: float = 1 / 3,
    shortcut: str | None = None,
    feedback_share: float = FEEDBACK_SHARE,
) -> Path:
    """Generate the toybirds data set.

    Parameters
    ----------
    out_dir
        Directory to write; created if missing. It must not hold files other than a previous
        toybirds data set (which is replaced).
    classes
        Number of species (2 to 200).
    per_class
        Images per species, train and test together.
    size
        Side of the square images, in pixels (at least 32).
    seed
        Everything random follows from it; the same arguments give identical files.
    test_fraction
        Fraction of each species' images in the test split.
    shortcut
        Plant a shortcut in this class (its name, or its number such as ``7`` or ``007``): a
        cue on the background of every one of its images, train and test (see the module's
        docstring). None: no cue anywhere.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ValueError
        On an argument out of range, or when ``out_dir`` holds something else.
    """
    out = Path(out_dir)
    _check_arguments(
        per_class=per_class, size=size, test_fraction=test_fraction, feedback_share=feedback_share
    )
    table = species_table(classes)
    planted = None if shortcut is None else resolve_category(table, shortcut)
    if out.exists() and any(out.iterdir()) and not (out / "toybirds.json").is_file():
        raise ValueError(
            f"out_dir: {out} exists and is not a toybirds data set; "
            "choose an empty or new directory"
        )
    out.mkdir(parents=True, exist_ok=True)

    n_test = max(1, round(per_class * test_fraction))
    n_feedback = round((per_class - n_test) * feedback_share)
    if n_feedback >= per_class - n_test:
        raise ValueError(
            f"feedback_share: {feedback_share} leaves no training images of the "
            f"{per_class - n_test} per species; give a smaller share or more --per-class"
        )
    image_rows: list[dict[str, object]] = []
    part_rows: list[dict[str, object]] = []
    progress = tqdm(total=classes * per_class, desc="toybirds", unit="img")
    for label, species in enumerate(table):
        cued = species.name == planted
        for folder in ("images", "masks", *(["cues"] if cued else [])):
            (out / folder / species.name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            rng = np.random.default_rng([seed, label, index])
            image, mask, pose = _draw_image(species, size, rng)
            image_id = f"{label:03d}_{index:04d}"
            image_path = f"images/{species.name}/{image_id}.png"
            mask_path = f"masks/{species.name}/{image_id}.png"
            row: dict[str, object] = {
                "image_id": image_id,
                "category": species.name,
                "split": _split(index, n_test, n_feedback),
                "image_path": image_path,
                "mask_path": mask_path,
                **pose,
            }
            if planted is not None:
                row["cue_path"] = ""
            if cued:  # its own stream: the rest of the image is the same as without the cue
                cue = _paint_cue(image, mask, np.random.default_rng([seed, label, index, 1]))
                row["cue_path"] = f"cues/{species.name}/{image_id}.png"
                Image.fromarray(cue, mode="L").save(out / row["cue_path"])
            image.save(out / image_path)
            Image.fromarray(mask, mode="L").save(out / mask_path)
            image_rows.append(row)
            part_rows.extend(_part_rows(image_id, mask))
            progress.update()
    progress.close()

    _write_csv(out / "images.csv", image_rows)
    _write_csv(out / "parts.csv", part_rows)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "seed": seed,
        "size": size,
        "per_class": per_class,
        "test_fraction": test_fraction,
        "feedback_share": feedback_share,
        "classes": [asdict(species) for species in table],
        "parts": {str(label): name for label, name in PARTS.items()},
        "shortcut": None
        if planted is None
        else {
            "category": planted,
            "cue": "magenta square in a corner, on every train and test image of the class",
            "colour": list(CUE_COLOUR),
            "side": _cue_side(size),
        },
    }
    (out / "toybirds.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def _split(index: int, n_test: int, n_feedback: int) -> str:
    if index < n_test:
        return "test"
    return "feedback" if index < n_test + n_feedback else "train"


def draw_toybirds_image(data: str | Path, image_id: str, *, cue: bool) -> Image.Image:
    """Draw image ``image_id`` of a toybirds data set again, with or without the cue.

    The image is drawn from the data set's seed exactly as :func:`make_toybirds` drew it; the
    cue, when asked, is painted from the same stream as in the planted class (for an image of
    another class: where it would lie were that class planted). So the planted class's image
    without the cue, or another class's image with it, differs from the file only under the cue.

    Raises
    ------
    ValueError
        ``data`` has no planted shortcut, or no image ``image_id``.
    """
    root = Path(data)
    meta = json.loads((root / "toybirds.json").read_text())
    if cue and not meta.get("shortcut"):
        raise ValueError(f"data: {root} has no planted shortcut, so no cue to paint")
    label_text, _, index_text = str(image_id).partition("_")
    table = [Species(**entry) for entry in meta["classes"]]
    if not (label_text.isdigit() and index_text.isdigit() and int(label_text) < len(table)):
        raise ValueError(f"image_id: {image_id!r} is not a toybirds image id of {root}")
    label, index = int(label_text), int(index_text)
    seed = int(meta["seed"])
    image, mask, _ = _draw_image(
        table[label], int(meta["size"]), np.random.default_rng([seed, label, index])
    )
    if cue:
        _paint_cue(image, mask, np.random.default_rng([seed, label, index, 1]))
    return image


def resolve_category(table: Sequence[Species], text: str) -> str:
    """The name of the species ``text`` names: its full name or its number (``7``, ``007``).

    Raises
    ------
    ValueError
        No species of ``table`` has that name or number.
    """
    names = [species.name for species in table]
    wanted = str(text).strip()
    if wanted in names:
        return wanted
    if wanted.isdigit() and 1 <= int(wanted) <= len(names):
        return names[int(wanted) - 1]
    raise ValueError(
        f"shortcut: no class {text!r}; give a class name or a number from 1 to {len(names)} "
        f"(e.g. {names[0]!r} or 1)"
    )


def _cue_side(size: int) -> int:
    return max(3, round(CUE_SIDE * size))


def _paint_cue(image: Image.Image, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paint the cue into a corner of ``image`` (in place); return the cue's mask.

    The corner is drawn among those where the cue covers no bird (else the least covered), so
    the cue stays on the background; the part mask is set to background under it either way.
    """
    size = image.size[0]
    side, margin = _cue_side(size), max(1, round(_CUE_MARGIN * size))
    far = size - margin - side
    corners = [(margin, margin), (far, margin), (margin, far), (far, far)]
    covered = [int((mask[y : y + side, x : x + side] > 0).sum()) for x, y in corners]
    free = [k for k, c in enumerate(covered) if c == min(covered)]
    x, y = corners[int(free[rng.integers(len(free))])]
    ImageDraw.Draw(image).rectangle((x, y, x + side - 1, y + side - 1), fill=CUE_COLOUR)
    cue = np.zeros(mask.shape, dtype=np.uint8)
    cue[y : y + side, x : x + side] = 255
    mask[cue > 0] = 0
    return cue


def _write_csv(path: Path, rows: Sequence[dict[str, object]]) -> None:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _part_rows(image_id: str, mask: np.ndarray) -> list[dict[str, object]]:
    rows = []
    for label in np.unique(mask):
        if label == 0:
            continue
        ys, xs = np.nonzero(mask == label)
        rows.append(
            {
                "image_id": image_id,
                "part": PARTS[int(label)],
                "label": int(label),
                "pixels": int(xs.size),
                "x_min": int(xs.min()),
                "y_min": int(ys.min()),
                "x_max": int(xs.max()),
                "y_max": int(ys.max()),
                "cx": round(float(xs.mean()), 2),
                "cy": round(float(ys.mean()), 2),
            }
        )
    return rows


def _jitter(colour: tuple[int, int, int], rng: np.random.Generator, amount: int = 18) -> tuple:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def _darker(colour: tuple[int, ...], factor: float = 0.6) -> tuple[int, ...]:
    return tuple(int(c * factor) for c in colour)


def _draw_image(
    species: Species, size: int, rng: np.random.Generator
) -> tuple[Image.Image, np.ndarray, dict[str, object]]:
    """One image, its part mask and its pose. Drawn at 2x and downsampled (anti-aliasing)."""
    big = 2 * size
    canvas = _background(big, rng)
    bird, bird_mask, wing_open = _draw_bird(species, big, rng)

    # Pose: mirror, tilt, scale, then place the bird fully inside the frame.
    facing_left = bool(rng.random() < 0.5)
    if facing_left:
        bird = bird.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        bird_mask = bird_mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    angle = float(rng.uniform(-20, 20))
    bird = bird.rotate(angle, resample=Image.Resampling.BICUBIC)
    bird_mask = bird_mask.rotate(angle, resample=Image.Resampling.NEAREST)
    scale = float(rng.uniform(0.7, 1.0))
    side = max(8, round(big * scale))
    bird = bird.resize((side, side), Image.Resampling.BICUBIC)
    bird_mask = bird_mask.resize((side, side), Image.Resampling.NEAREST)
    box = bird_mask.getbbox() or (0, 0, side, side)
    # Offsets keep the bird's bounding box inside the canvas.
    x = int(rng.integers(-box[0], big - box[2] + 1)) if big - box[2] >= -box[0] else 0
    y = int(rng.integers(-box[1], big - box[3] + 1)) if big - box[3] >= -box[1] else 0
    canvas.paste(bird, (x, y), bird)
    full_mask = Image.new("L", (big, big), 0)
    full_mask.paste(bird_mask, (x, y), bird_mask.point(lambda v: 255 if v else 0))

    brightness = float(rng.uniform(0.85, 1.15))
    pixels = np.asarray(canvas.convert("RGB"), dtype=np.float32) * brightness
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    mask = np.array(full_mask.resize((size, size), Image.Resampling.NEAREST), dtype=np.uint8)
    pose = {
        "facing": "left" if facing_left else "right",
        "angle": round(angle, 2),
        "scale": round(scale, 3),
        "wing": "open" if wing_open else "closed",
    }
    return image, mask, pose


def _background(side: int, rng: np.random.Generator) -> Image.Image:
    """Sky or foliage gradient, leafy blobs, branches and a few random-colour distractors."""
    top = np.array(_jitter((150, 190, 225), rng, 40), dtype=np.float32)
    bottom = np.array(_jitter((120, 160, 110), rng, 40), dtype=np.float32)
    t = np.linspace(0, 1, side, dtype=np.float32)[:, None, None]
    gradient = (1 - t) * top + t * bottom
    image = Image.fromarray(np.repeat(gradient, side, axis=1).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(6, 14))):  # foliage
        cx, cy = rng.uniform(0, side, 2)
        rx, ry = rng.uniform(0.04, 0.16, 2) * side
        green = _jitter((70, 120, 60), rng, 35)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=green)
    for _ in range(int(rng.integers(1, 4))):  # branches
        x0, y0 = rng.uniform(0, side, 2)
        length, angle = rng.uniform(0.3, 0.9) * side, rng.uniform(0, math.pi)
        x1, y1 = x0 + length * math.cos(angle), y0 + length * math.sin(angle)
        draw.line((x0, y0, x1, y1), fill=_jitter((95, 70, 45), rng, 20), width=int(side * 0.03))
    for _ in range(int(rng.integers(1, 4))):  # distractors: colours a bird could have
        cx, cy = rng.uniform(0, side, 2)
        r = rng.uniform(0.02, 0.06) * side
        colour = _jitter(_COLOURS[str(rng.choice(list(_COLOURS)))], rng, 25)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    return image


class _Painter:
    """A transparent ``side`` x ``side`` layer and its part mask, drawn in step.

    Shapes are given in percent of the side; each one is painted in its colour on the layer
    and in its part's label (:data:`PARTS`) on the mask.
    """

    def __init__(self, side: int) -> None:
        self.layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        self.mask = Image.new("L", (side, side), 0)
        self.scale = side / 100
        self._paint, self._label = ImageDraw.Draw(self.layer), ImageDraw.Draw(self.mask)

    def shape(self, kind: str, part: str, coords, colour, **kw) -> None:
        """Draw ``kind`` (an ImageDraw method: polygon, ellipse, line, pieslice) as ``part``."""
        xy = [(px * self.scale, py * self.scale) for px, py in coords]
        getattr(self._paint, kind)(xy, fill=(*colour, 255), **kw)
        getattr(self._label, kind)(xy, fill=_LABEL[part], **kw)


@dataclass(frozen=True)
class _Frame:
    """Where the body (centre, radii) and the head (centre, radius) lie, in percent."""

    bx: float
    by: float
    brx: float
    bry: float
    hx: float
    hy: float
    hr: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Frame:
        """A little variation per image: a chubbier or slimmer bird, the head moved a bit."""
        bx, by = 46 + rng.uniform(-2, 2), 56 + rng.uniform(-2, 2)
        brx, bry = 21 + rng.uniform(-2, 2), 13 + rng.uniform(-1.5, 1.5)
        hx, hy, hr = bx + brx + rng.uniform(-1, 1), by - bry - 3 + rng.uniform(-2, 2), 10
        return cls(bx, by, brx, bry, hx, hy, hr)

    @property
    def body_box(self) -> list[tuple[float, float]]:
        """The body ellipse's bounding box: top-left and bottom-right corners."""
        return [(self.bx - self.brx, self.by - self.bry), (self.bx + self.brx, self.by + self.bry)]


def _draw_bird(
    species: Species, side: int, rng: np.random.Generator
) -> tuple[Image.Image, Image.Image, bool]:
    """The bird facing right on a transparent ``side`` x ``side`` layer, its part mask, and
    whether its wing is open.

    Parts are drawn back to front (tail, feet, body, wing, throat, head, crown, eye, beak);
    the order of the random draws is part of the data set (the same seed, the same bytes).
    """
    painter = _Painter(side)
    body_colour = _jitter(_COLOURS[species.body], rng)
    frame = _Frame.draw(rng)
    _draw_tail(painter, frame, species.tail, _darker(body_colour, 0.8))
    _draw_feet(painter, frame, rng)
    painter.shape(
        "ellipse",
        "body",
        [
            (frame.bx - frame.brx, frame.by - frame.bry),
            (frame.bx + frame.brx, frame.by + frame.bry),
        ],
        body_colour,
    )
    wing_open = _draw_wing(painter, frame, species.wing, _darker(body_colour, 0.7), rng)
    _draw_head(painter, frame, species, body_colour, rng)
    _draw_beak(painter, frame, species.beak, rng)
    return painter.layer, painter.mask, wing_open


def _draw_tail(painter: _Painter, frame: _Frame, tail: str, colour: tuple) -> None:
    """The tail (fan, forked or pointed), behind the body."""
    tx, by = frame.bx - frame.brx + 3, frame.by
    tails = {
        "fan": [(tx, by - 2), (tx - 20, by - 12), (tx - 23, by), (tx - 20, by + 12), (tx, by + 4)],
        "forked": [
            (tx, by - 2),
            (tx - 24, by - 11),
            (tx - 14, by + 1),
            (tx - 24, by + 12),
            (tx, by + 4),
        ],
        "pointed": [(tx, by - 3), (tx - 28, by + 2), (tx, by + 4)],
    }
    painter.shape("polygon", "tail", tails[tail], colour)


def _draw_feet(painter: _Painter, frame: _Frame, rng: np.random.Generator) -> None:
    """Two legs with toes, below the body."""
    foot = _jitter((200, 140, 60), rng, 20)
    for fx in (frame.bx - 4, frame.bx + 5):
        top_y, bottom_y = frame.by + frame.bry - 2, frame.by + frame.bry + 11
        width = max(1, round(2.2 * painter.scale))
        painter.shape("line", "feet", [(fx, top_y), (fx, bottom_y)], foot, width=width)
        painter.shape("line", "feet", [(fx - 4, bottom_y), (fx + 5, bottom_y)], foot, width=width)


def _draw_wing(
    painter: _Painter, frame: _Frame, pattern: str, colour: tuple, rng: np.random.Generator
) -> bool:
    """The wing, folded on the body or raised above the back, with its pattern; returns
    whether it is open (raised)."""
    bx, by = frame.bx, frame.by
    wing_open = bool(rng.random() < 0.4)
    if wing_open:
        wing_xy = [(bx - 12, by - 4), (bx + 10, by - 6), (bx - 2, by - 36), (bx - 18, by - 30)]
    else:
        wing_xy = [
            (bx - 16, by - 3),
            (bx + 8, by - 9),
            (bx + 12, by + 2),
            (bx - 6, by + 8),
            (bx - 20, by + 4),
        ]
    painter.shape("polygon", "wing", wing_xy, colour)
    _wing_pattern(painter.layer, wing_xy, painter.scale, pattern, colour)
    return wing_open


def _draw_head(
    painter: _Painter,
    frame: _Frame,
    species: Species,
    body_colour: tuple,
    rng: np.random.Generator,
) -> None:
    """Throat, head, crown and eye. A ``"plain"`` throat or crown has the body's colour."""

    def part_colour(value: str) -> tuple:
        return body_colour if value == "plain" else _jitter(_COLOURS[value], rng)

    hx, hy, hr = frame.hx, frame.hy, frame.hr
    painter.shape(
        "ellipse", "throat", [(hx - 9, hy + 1), (hx + 6, hy + 17)], part_colour(species.throat)
    )
    painter.shape("ellipse", "head", [(hx - hr, hy - hr), (hx + hr, hy + hr)], body_colour)
    painter.shape(
        "pieslice",
        "crown",
        [(hx - hr, hy - hr), (hx + hr, hy + hr)],
        part_colour(species.crown),
        start=195,
        end=345,
    )
    # Eye: dark, red iris, or dark with a white ring.
    ex, ey = hx + 3, hy - 1
    if species.eye == "ringed":
        painter.shape(
            "ellipse", "eye", [(ex - 3.8, ey - 3.8), (ex + 3.8, ey + 3.8)], (245, 245, 245)
        )
    iris = (200, 30, 30) if species.eye == "red" else (15, 15, 15)
    painter.shape("ellipse", "eye", [(ex - 2.3, ey - 2.3), (ex + 2.3, ey + 2.3)], iris)


def _draw_beak(painter: _Painter, frame: _Frame, beak: str, rng: np.random.Generator) -> None:
    """The beak (short, long or hooked) at the front of the head; a hooked one is dark."""
    hy = frame.hy
    colour = _jitter((230, 180, 40), rng, 20) if beak != "hooked" else (40, 40, 40)
    bx0 = frame.hx + frame.hr - 1.5
    beaks = {
        "short": [(bx0, hy - 2), (bx0 + 9, hy + 1.5), (bx0, hy + 4)],
        "long": [(bx0, hy - 2), (bx0 + 20, hy + 2), (bx0, hy + 4)],
        "hooked": [
            (bx0, hy - 3),
            (bx0 + 9, hy - 1),
            (bx0 + 11, hy + 5),
            (bx0 + 7, hy + 2),
            (bx0, hy + 4),
        ],
    }
    painter.shape("polygon", "beak", beaks[beak], colour)


def _wing_pattern(layer: Image.Image, wing_xy: list, s: float, pattern: str, colour: tuple) -> None:
    """Bars or spots inside the wing polygon (the mask keeps the wing's label)."""
    if pattern == "plain":
        return
    side = layer.size[0]
    clip = Image.new("L", (side, side), 0)
    ImageDraw.Draw(clip).polygon([(x * s, y * s) for x, y in wing_xy], fill=255)
    marks = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(marks)
    xs, ys = [x for x, _ in wing_xy], [y for _, y in wing_xy]
    light = (240, 240, 230, 255)
    if pattern == "barred":
        for offset in np.linspace(0.25, 0.75, 3):
            x = (min(xs) + offset * (max(xs) - min(xs))) * s
            draw.line(
                (x, min(ys) * s, x - 4 * s, max(ys) * s), fill=light, width=max(1, round(2 * s))
            )
    else:
        for fx in np.linspace(0.2, 0.8, 4):
            for fy in np.linspace(0.3, 0.7, 2):
                x = (min(xs) + fx * (max(xs) - min(xs))) * s
                y = (min(ys) + fy * (max(ys) - min(ys))) * s
                r = 1.6 * s
                draw.ellipse((x - r, y - r, x + r, y + r), fill=light)
    clipped = Image.composite(marks, Image.new("RGBA", (side, side), (0, 0, 0, 0)), clip)
    layer.alpha_composite(clipped)
