"""A small hand-made map bundle in the format of docs/formats.md, for tests and benchmarks.

The real bundle comes from ``xnaming explain``; this one is drawn with Pillow and written
through the bundle's own writer (:class:`xnn_training.bundle.io.BundleWriter`), so every reader
takes it as it takes a real one. Next to the bundle's tables, ``parts.csv`` (activation_id,
part) gives the bird part each map's heat sits on, which stands in for the concept a careful
annotator would give (the fixed grouping of the moves measurement). With ``embeddings=True``
every map also gets an embedding (``xnn_training.bundle.embeddings``): a few "appearance" channels
that tell the parts apart (with a colour shift per category, as toybirds' species differ) and
the geometry of its hot spot, gathered into ``embeddings.npz`` as ``xnaming explain`` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from xnn_training.bundle.embeddings import GEOMETRY, embeddings_entry, write_embeddings
from xnn_training.bundle.io import (
    ActivationMap,
    BundleWriter,
    ExplainedImage,
    activation_id,
    read_table,
)
from xnn_training.training.table_one import table_one

# Where each part's heat sits (x, y as fractions of the image) and its colour in the image.
PARTS = {"head": (0.25, 0.25), "wing": (0.55, 0.55), "tail": (0.85, 0.8), "leaves": (0.2, 0.85)}
# X-feature k of each category fires on these parts, by image index (k=2 is ambiguous).
FEATURE_PARTS = {0: ("head",), 1: ("wing",), 2: ("tail", "tail", "head"), 3: ("leaves",)}
SIZE = 48
PARTS_FILE = "parts.csv"
EMBEDDING_LAYERS = {"fake.appearance": 6}


def _embedding(part: str, heat: np.ndarray, c_index: int, rng: np.random.Generator) -> np.ndarray:
    """Appearance channels (one per part, shifted per category) and the hot spot's geometry."""
    width = EMBEDDING_LAYERS["fake.appearance"]
    look = rng.normal(0, 0.2, width)
    look[list(PARTS).index(part)] += 2.0
    look[4 + c_index % 2] += 1.0  # the species' colour: the same part looks other elsewhere
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    w = heat / heat.sum()
    cx, cy = float((w * xs).sum()), float((w * ys).sum())
    geometry = dict.fromkeys(GEOMETRY, 0.0)
    geometry.update(hot_x=cx, hot_y=cy, object_dx=(cx - 0.5) / 0.25, object_dy=(cy - 0.5) / 0.25)
    return np.concatenate([look, [geometry[name] for name in GEOMETRY]]).astype(np.float32)


def _heat(part: str, rng: np.random.Generator) -> np.ndarray:
    cx, cy = PARTS[part]
    cx, cy = cx + rng.normal(0, 0.03), cy + rng.normal(0, 0.03)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 0.01).astype(np.float32)


def make_bundle(
    root: Path,
    *,
    categories: tuple[str, ...] = ("cardinal", "jay"),
    images_per_category: int = 4,
    features: int = 4,
    seed: int = 0,
    embeddings: bool = False,
) -> Path:
    """Write a bundle under ``root`` and return its path (with map embeddings, if asked)."""
    rng = np.random.default_rng(seed)
    identity = {"dnn_run": None, "xnn_run": None, "layer": "fc1", "threshold": 0.9}
    if embeddings:
        identity["embeddings"] = embeddings_entry(EMBEDDING_LAYERS)
    writer = BundleWriter(root, {**identity, "explain": "true"}, {"versions": {}})
    parts = []
    for c_index, category in enumerate(categories):
        for i in range(images_per_category):
            image_id = f"{category}_{i:04d}"
            base = np.full((SIZE, SIZE, 3), 60 + 40 * (c_index % 5), dtype=np.uint8)
            base[SIZE // 4 : 3 * SIZE // 4, SIZE // 4 : 3 * SIZE // 4] = (
                200,
                80 + 30 * (c_index % 5),
                60,
            )
            shown = [k for k in range(features) if (i + k) % 5 != 4]  # not every feature fires
            activations = []
            for rank, k in enumerate(shown, start=1):
                options = FEATURE_PARTS[k % len(FEATURE_PARTS)]
                part = options[i % len(options)]
                heat = _heat(part, rng)
                overlay = base.astype(np.float32)
                overlay[..., 0] = overlay[..., 0] * 0.4 + 255 * heat * 0.6
                contribution = float(len(shown) - rank + 1)
                activations.append(
                    ActivationMap(
                        x_feature=k,
                        contribution=contribution,
                        share=contribution / sum(range(1, len(shown) + 1)),
                        rank=rank,
                        heat=heat,
                        overlay=Image.fromarray(overlay.clip(0, 255).astype(np.uint8)),
                        embedding=_embedding(part, heat, c_index, rng) if embeddings else None,
                    )
                )
                parts.append({"activation_id": activation_id(image_id, k), "part": part})
            writer.add(
                ExplainedImage(
                    image_id=image_id,
                    category=category,
                    true_category=category,
                    prediction=category,
                    score=1.0,
                    image=Image.fromarray(base),
                    activations=activations,
                )
            )
    pd.DataFrame(parts, columns=["activation_id", "part"]).to_csv(root / PARTS_FILE, index=False)
    if embeddings:
        write_embeddings(root)
    return writer.finish(table_one(read_table(root / "images.csv")))


def read_parts(bundle: Path) -> pd.DataFrame:
    """The ``parts.csv`` of a bundle made by :func:`make_bundle`."""
    return pd.read_csv(Path(bundle) / PARTS_FILE, dtype=str)
