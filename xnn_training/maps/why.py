"""Any image explained in the annotators' words: ``xnaming why``.

For each image (files, or folders searched for image files), the DNN's predicted class and
score, the xNN's significant X-features of that class with their share of the score, their
Excitation Backprop maps as overlay PNGs, and the concept of each map. The concepts come from
one of two places:

- ``--namings NAMINGS.csv --bundle BUNDLE [--annotator NAME]``: each map is named as that
  annotator (or the consensus) would name it, by a model learnt from their namings of the
  bundle's maps (:mod:`analysis.namers.learnt`: a small CNN that reads each map over its
  image, as the annotator read the overlay); ``other`` where they would leave it unnamed or
  discard it. Works with any xNN of the classifier the bundle was explained for;
- otherwise an aligned xNN (``xnaming train xnn --namings``) names its X-features in
  ``config.json``, a free X-feature being ``other``; an xNN trained without namings carries no
  names (the column is empty).

Written to
``DIR/why.csv``, ``DIR/summary.csv`` (the paper's Table 4 over these images: per predicted class,
how many images get each explanation) and ``DIR/why.html``.

A file the classifier cannot read (not an image, a mode that does not convert to RGB, smaller
than a quarter of the input side) gets one line on stderr and a row in ``DIR/skipped.csv``;
the others are still explained. The maps are computed exactly as ``xnaming explain`` computes
them (:class:`xnn_training.maps.explain.Explainer`, the predicted class).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from analysis.measures.summaries import OTHER, SEPARATOR, UNLABELED
from analysis.namers.learnt import (
    LearntNamer,
    descriptor_rows,
    fit_learnt_namer,
    read_as_shown,
)
from xnn_training.data.datasets import image_transform
from xnn_training.defaults import SIGNIFICANT_SHARE
from xnn_training.devices import resolve_device
from xnn_training.maps.explain import Explainer, default_map_layer, display_image
from xnn_training.maps.overlay import save_overlay
from xnn_training.training.runs import WEIGHTS, load_xnn_run

__all__ = ["IMAGE_SUFFIXES", "OTHER", "WHY_COLUMNS", "explanation_summary", "find_images", "why"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
"""The files a folder is searched for."""
WHY_COLUMNS = ["image_path", "predicted", "x_feature", "share", "concept", "overlay_path", "score"]
SMALLEST = 0.25
"""An image whose smaller side is under this fraction of the classifier's input side is
refused: upsampled more than 4 times, its explanation would be of the interpolation."""
_Names = LearntNamer | dict[str, dict[int, str]]
"""Where the concepts come from: a learnt namer, or an aligned xNN's names (empty: none)."""


@dataclass(frozen=True)
class _Loaded:
    path: Path
    tensor: torch.Tensor
    number: int  # its place among the files: names its overlays' folder


def find_images(paths: Sequence[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The image files among ``paths`` (folders searched recursively for
    :data:`IMAGE_SUFFIXES`, sorted) and the paths that do not exist, with why."""
    found: list[Path] = []
    missing: list[tuple[Path, str]] = []
    for given in map(Path, paths):
        if given.is_dir():
            found += sorted(
                p for p in given.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif given.is_file():
            found.append(given)
        else:
            missing.append((given, "no such file or folder"))
    return found, missing


def _load(path: Path, size: int) -> torch.Tensor | str:
    """The image as the classifier reads it, or why it cannot."""
    try:
        with Image.open(path) as handle:
            handle.load()
            if min(handle.size) < SMALLEST * size:
                return (
                    f"{handle.size[0]}x{handle.size[1]} px is too small for this classifier "
                    f"(input {size} px; at least {round(SMALLEST * size)} px a side)"
                )
            image = handle.convert("RGB")
    except UnidentifiedImageError:
        return "not an image file PIL can read"
    except (OSError, ValueError) as error:
        return f"cannot be read as an RGB image ({error})"
    return image_transform(size)(image)


def why(
    dnn: str | Path,
    xnn: str | Path,
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    batch_size: int = 32,
    threshold: float = SIGNIFICANT_SHARE,
    map_layer: str | None = None,
    namings: str | Path | None = None,
    bundle: str | Path | None = None,
    annotator: str | None = None,
    device: str = "auto",
) -> Path:
    """Explain images with a DNN and its xNN, in the annotators' words.

    Parameters
    ----------
    dnn, xnn
        The DNN run and an xNN run trained on it (aligned or not).
    inputs
        Image files and folders (searched recursively for :data:`IMAGE_SUFFIXES`).
    out
        The directory to write why.csv, summary.csv, skipped.csv, why.html and overlays/ into.
    batch_size, threshold, map_layer, device
        As ``xnaming explain``: images per pass, the share of the positive score the
        significant X-features cover, the map layer (default: the architecture's), where.
    namings, bundle, annotator
        Name each map as ``annotator`` (default: the consensus) named the maps of ``bundle``
        in ``namings`` (:func:`analysis.namers.learnt.fit_learnt_namer`); both or neither.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ValueError
        Nothing to explain: no readable image among ``inputs`` (each refusal was printed);
        ``namings`` without ``bundle`` or the reverse; namings the namer cannot learn from
        (:func:`~analysis.namers.learnt.fit_learnt_namer`).
    """
    if batch_size < 1 or not 0 < threshold <= 1:
        raise ValueError(
            f"batch_size, threshold: expected >= 1 and in (0, 1], got {batch_size}, {threshold}"
        )
    if (namings is None) != (bundle is None) or (annotator and namings is None):
        raise ValueError("--namings and --bundle go together (and --annotator needs them)")
    out = Path(out)
    device_ = resolve_device(device)
    run = load_xnn_run(xnn, dnn=dnn)
    size = run.dnn.image_size
    files, skipped = find_images(inputs)
    layer = map_layer or default_map_layer(run.dnn.config["arch"], run.dnn.model)
    namer = None
    if namings is not None:
        namer = fit_learnt_namer(
            namings, bundle, annotator=annotator, dnn_weights=run.dnn.path / WEIGHTS
        )
        if namer.map_layer != layer:
            raise ValueError(
                f"--layer: the bundle's maps are at {namer.map_layer!r}, these would be at "
                f"{layer!r}; the namer learnt from maps of one layer: give --layer "
                f"{namer.map_layer}"
            )
    names: _Names = namer or run.concepts
    explainer = Explainer(run, layer, threshold, contrastive=False, device=device_,
                          embedding_layers=())  # fmt: skip
    rows: list[dict[str, object]] = []
    bar = tqdm(total=len(files), desc="why", unit="img")
    for start in range(0, len(files), batch_size):
        loaded: list[_Loaded] = []
        for number, path in enumerate(files[start : start + batch_size], start=start):
            result = _load(path, size)
            if isinstance(result, str):
                skipped.append((path, result))
            else:
                loaded.append(_Loaded(path, result, number))
        bar.update(min(batch_size, len(files) - start))
        if not loaded:
            continue
        images = torch.stack([item.tensor for item in loaded])
        batch = explainer(images, torch.zeros(len(loaded), dtype=torch.long), "predicted")
        shown = [display_image(item.path, (size, size)) if _explained(batch, i) else None
                 for i, item in enumerate(loaded)]  # fmt: skip
        concepts = _concepts(batch, shown, run, names)
        for i, item in enumerate(loaded):
            rows += _rows(item, batch, i, run, shown[i], concepts[i], out)
    bar.close()
    for path, reason in skipped:
        print(f"xnaming why: {path}: {reason}; skipped", file=sys.stderr)
    if not rows:
        raise ValueError(
            f"inputs: no image to explain among {len(inputs)} path(s) "
            f"({len(skipped)} skipped, each named above)"
        )
    table = pd.DataFrame(rows, columns=WHY_COLUMNS).astype({"x_feature": "Int64"})
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "why.csv", index=False, float_format="%.6f")
    summary = explanation_summary(table, aligned=bool(names))
    summary.to_csv(out / "summary.csv", index=False, float_format="%.6f")
    pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(out / "skipped.csv", index=False)
    _write_page(out, table, summary, skipped, run, names)
    images_done = table["image_path"].nunique()
    print(f"xnaming why: {images_done} image(s) explained, {len(skipped)} skipped; wrote {out}/ "
          "(why.csv, summary.csv, why.html, overlays/)")  # fmt: skip
    return out


def _explained(batch, i: int) -> bool:
    """Whether image ``i`` of the batch has significant X-features (maps to show and name)."""
    return int(batch.explained[i]) >= 0 and bool(batch.significant[i])


def _rows(item: _Loaded, batch, i, run, shown: Image.Image | None, concepts: list[str],
          out: Path) -> list[dict]:  # fmt: skip
    """why.csv's rows of one image: one per significant X-feature (one empty row if none)."""
    path, index = item.path, item.number
    logits = batch.logits[i]
    predicted = run.dnn.classes[int(logits.argmax())]
    base = {"image_path": str(path), "predicted": predicted, "score": float(logits.max())}
    if shown is None:
        return [base | {"x_feature": None, "share": None, "concept": "", "overlay_path": ""}]
    folder = f"{index:05d}_{path.stem}"
    result = []
    for (k, _, share, _), heat, concept in zip(
        batch.significant[i], batch.layer_maps[i], concepts, strict=True
    ):
        overlay = Path("overlays") / folder / f"x{k}.png"
        save_overlay(out / overlay, shown, heat)
        result.append(base | {"x_feature": k, "share": share, "concept": concept,
                              "overlay_path": overlay.as_posix()})  # fmt: skip
    return result


def _concepts(batch, shown: list[Image.Image | None], run, names: _Names) -> list[list[str]]:
    """The concept of each significant map of each image of the batch: the learnt namer's
    verdict, the aligned xNN's name of its X-feature (``other`` when free), or "" (no names).

    The namer reads each image's display copy, as it read the bundle's copies in training, and
    all the batch's maps in one call.
    """
    explained = [i for i, image in enumerate(shown) if image is not None]
    said: list[list[str]] = [[] for _ in shown]
    if isinstance(names, LearntNamer) and explained:
        significant = [batch.significant[i] for i in explained]
        descriptors = np.concatenate([
            descriptor_rows([share for _, _, share, _ in maps], [rank for *_, rank in maps],
                            np.asarray(batch.geometry[i]))
            for i, maps in zip(explained, significant, strict=True)
        ])  # fmt: skip
        heat = torch.from_numpy(np.concatenate([np.stack(batch.maps[i]) for i in explained]))
        side = heat.shape[-1]
        images = torch.cat([read_as_shown(shown[i], side)[None].expand(len(maps), -1, -1, -1)
                            for i, maps in zip(explained, significant, strict=True)])  # fmt: skip
        verdicts = iter(names.name(images, heat, descriptors))
        for i, maps in zip(explained, significant, strict=True):
            said[i] = [next(verdicts) for _ in maps]
        return said
    for i in explained:
        category = run.classes[int(batch.explained[i])]
        said[i] = [
            names.get(category, {}).get(k, OTHER) if names else "" for k, *_ in batch.significant[i]
        ]
    return said


def explanation_summary(table: pd.DataFrame, *, aligned: bool) -> pd.DataFrame:
    """The paper's Table 4 over ``why.csv``: per predicted class, each explanation (the sorted
    concepts of an image's significant X-features joined by " + ", "+ other" when a free
    X-feature is among them, "unlabeled" when none carries a concept) with its images and
    fraction, most frequent first."""
    rows = []
    for predicted, images in table.groupby("predicted", sort=True):
        said = []
        for _, maps in images.groupby("image_path", sort=False):
            words = sorted({c for c in maps["concept"] if c and c != OTHER})
            if not words:
                said.append(UNLABELED)
                continue
            has_other = aligned and (maps["concept"] == OTHER).any()
            said.append(SEPARATOR.join(words + ([OTHER] if has_other else [])))
        counts = Counter(said)
        for explanation, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append({"predicted": predicted, "explanation": explanation, "images": count,
                         "fraction": count / len(said)})  # fmt: skip
    return pd.DataFrame(rows, columns=["predicted", "explanation", "images", "fraction"])


def _write_page(out: Path, table, summary, skipped, run, names: _Names) -> None:
    """why.html, in the report's look (its style sheet)."""
    from analysis.report.writer import templates

    images = []
    for path, maps in table.groupby("image_path", sort=False):
        first = maps.iloc[0]
        images.append({
            "path": path, "predicted": first["predicted"], "score": f"{first['score']:.2f}",
            "maps": [{"x_feature": int(m["x_feature"]), "share": f"{100 * m['share']:.0f}%",
                      "concept": m["concept"] or "(no name)", "overlay": m["overlay_path"]}
                     for _, m in maps.iterrows() if m["overlay_path"]],
        })  # fmt: skip
    page = templates().get_template("why.html.j2").render({
        "written": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
        "xnn": str(run.path),
        "aligned": bool(names),
        "names_from": (
            f"Each map named as {names.who} would name it: learnt from {names.maps} maps they "
            f"judged in {names.bundle}." if isinstance(names, LearntNamer)
            else "Each X-feature named by the aligned xNN." if names else ""
        ),
        "images": images,
        "summary": summary.to_dict("records"),
        "skipped": [{"path": str(p), "reason": r} for p, r in skipped],
    })  # fmt: skip
    (out / "why.html").write_text(page, encoding="utf-8")
