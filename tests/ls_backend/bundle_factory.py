"""A small hand-made map bundle, exactly per docs/formats.md, for tests and benchmarks.

The real bundle comes from ``xnaming explain``; this one is drawn with Pillow. Each activation
also carries a ``part`` column: the bird part its heat sits on, which stands in for the concept
a careful annotator would give (the fixed grouping of the moves measurement).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

# Where each part's heat sits (x, y as fractions of the image) and its colour in the image.
PARTS = {"head": (0.25, 0.25), "wing": (0.55, 0.55), "tail": (0.85, 0.8), "leaves": (0.2, 0.85)}
# X-feature k of each category fires on these parts, by image index (k=2 is ambiguous).
FEATURE_PARTS = {0: ("head",), 1: ("wing",), 2: ("tail", "tail", "head"), 3: ("leaves",)}
SIZE = 48


def _heat(part: str, rng: np.random.Generator) -> np.ndarray:
    cx, cy = PARTS[part]
    cx, cy = cx + rng.normal(0, 0.03), cy + rng.normal(0, 0.03)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 0.01).astype(np.float32)


def make_bundle(
    root: Path,
    categories: tuple[str, ...] = ("cardinal", "jay"),
    images_per_category: int = 4,
    features: int = 4,
    seed: int = 0,
) -> Path:
    """Write a bundle under ``root`` and return its path."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    activations, images = [], []
    for c_index, category in enumerate(categories):
        for i in range(images_per_category):
            image_id = f"{category}_{i:04d}"
            base = np.full((SIZE, SIZE, 3), 60 + 40 * (c_index % 5), dtype=np.uint8)
            base[SIZE // 4 : 3 * SIZE // 4, SIZE // 4 : 3 * SIZE // 4] = (
                200,
                80 + 30 * (c_index % 5),
                60,
            )
            image_path = f"images/{image_id}.png"
            (root / "images").mkdir(exist_ok=True)
            Image.fromarray(base).save(root / image_path)
            shown = [k for k in range(features) if (i + k) % 5 != 4]  # not every feature fires
            for rank, k in enumerate(shown, start=1):
                parts = FEATURE_PARTS[k % len(FEATURE_PARTS)]
                part = parts[i % len(parts)]
                heat = _heat(part, rng)
                map_path = f"maps/{image_id}/x{k}.npz"
                overlay_path = f"overlays/{image_id}/x{k}.png"
                (root / map_path).parent.mkdir(parents=True, exist_ok=True)
                (root / overlay_path).parent.mkdir(parents=True, exist_ok=True)
                np.savez(root / map_path, map=heat)
                overlay = base.astype(np.float32)
                overlay[..., 0] = overlay[..., 0] * 0.4 + 255 * heat * 0.6
                Image.fromarray(overlay.clip(0, 255).astype(np.uint8)).save(root / overlay_path)
                contribution = float(len(shown) - rank + 1)
                activations.append(
                    {
                        "activation_id": f"{image_id}:x{k}",
                        "image_id": image_id,
                        "category": category,
                        "x_feature": k,
                        "contribution": contribution,
                        "share": contribution / sum(range(1, len(shown) + 1)),
                        "rank": rank,
                        "map_path": map_path,
                        "overlay_path": overlay_path,
                        "image_path": image_path,
                        "part": part,
                    }
                )
            images.append(
                {
                    "image_id": image_id,
                    "category": category,
                    "true_category": category,
                    "prediction": category,
                    "score": 1.0,
                    "n_significant": len(shown),
                    "image_path": image_path,
                }
            )
    pd.DataFrame(activations).to_csv(root / "activations.csv", index=False)
    pd.DataFrame(images).to_csv(root / "images.csv", index=False)
    summary = (
        pd.DataFrame(images).groupby("category")["n_significant"].mean().rename("mean_significant")
    )
    summary.to_csv(root / "summary.csv")
    files = {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
    manifest = {
        "format": "xnaming-bundle",
        "version": 1,
        "created": "2026-01-01T00:00:00Z",
        "dnn_run": None,
        "xnn_run": None,
        "layer": "fc1",
        "threshold": 0.9,
        "explain": "true",
        "versions": {},
        "files": files,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root
