"""The map bundle: what ``xnaming explain`` writes and every later stage reads.

The one writer (:class:`BundleWriter`) and the one reader (:func:`read_bundle`, and
:func:`read_table` for a single table) of bundles: every later stage reads through them. The
layout and columns are specified in docs/formats.md. A bundle is written image by image:
an image's files and activation rows come first, its row in ``images.csv`` last, so a row in
``images.csv`` means "this image is finished". Reopening the same directory with the same
identity (runs, layer, threshold, ...) resumes after the last finished image; a directory
holding anything else is refused, never overwritten. A run sharded over processes writes one
part of the tables per process (``parts/<part>/``), merged into the bundle's tables in the data
set's order when the run ends or the bundle is reopened (:meth:`BundleWriter.merge`).
"""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from PIL import Image

from xnn_training.files import sha256
from xnn_training.maps.hot_spot import MAP_GEOMETRY, describe_map, map_geometry

__all__ = [
    "ACTIVATIONS_TABLE",
    "ACTIVATION_COLUMNS",
    "EXTRA_IMAGE_COLUMNS",
    "GEOMETRY_COLUMNS",
    "GEOMETRY_TABLE",
    "IMAGE_COLUMNS",
    "MAP_EMBEDDING",
    "ActivationMap",
    "Bundle",
    "BundleError",
    "BundleWriter",
    "ExplainedImage",
    "activation_id",
    "bundle_geometry",
    "read_bundle",
    "read_table",
]

BUNDLE_FORMAT = "xnaming-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
ACTIVATIONS_TABLE = "activations.csv"
IMAGES_TABLE = "images.csv"
GEOMETRY_TABLE = "geometry.csv"
PER_IMAGE_TABLES = (ACTIVATIONS_TABLE, GEOMETRY_TABLE, IMAGES_TABLE)
"""The tables :meth:`BundleWriter.add` appends to, each with an ``image_id`` column; a row in
``images.csv`` marks its image finished."""
PARTS = "parts"
"""While a sharded run writes: ``parts/<part>/`` holds one process's table rows."""
MAP_EMBEDDING = "embedding"
"""The array of a map file (``maps/<image>/x<k>.npz``) that holds the map's embedding, when the
bundle has embeddings (:mod:`xnn_training.bundle.embeddings` gathers them when the bundle is
finished)."""
LOCK = ".lock"
"""While a run writes: held by its main writer, so that a second run on the bundle is refused."""
ACTIVATION_COLUMNS = (
    "activation_id",
    "image_id",
    "category",
    "x_feature",
    "contribution",
    "share",
    "rank",
    "map_path",
    "overlay_path",
    "image_path",
)
GEOMETRY_COLUMNS = ("activation_id", "image_id", *MAP_GEOMETRY)
"""``geometry.csv``: each map's geometry (:data:`xnn_training.maps.hot_spot.MAP_GEOMETRY`),
measured once as the bundle is written (kept apart from ``activations.csv``, whose rows do not
depend on float rounding)."""
IMAGE_COLUMNS = (
    "image_id",
    "category",
    "true_category",
    "prediction",
    "score",
    "n_significant",
    "image_path",
)
EXTRA_IMAGE_COLUMNS = ("xnn_prediction", "dnn_logit")
"""Optional ``images.csv`` columns (``ExplainedImage.extra``): the xNN's prediction (the DNN's
logits with the explained classes' logits replaced by their xNN scores) and the DNN's logit of
the explained class; the summary's accuracies and RMSE are computed from them."""
_STRING_COLUMNS = (
    "activation_id",
    "image_id",
    "category",
    "true_category",
    "prediction",
    "xnn_prediction",
)


class BundleError(ValueError):
    """A directory that is not the expected bundle, or a bundle that is damaged."""


@dataclass(frozen=True)
class ActivationMap:
    """One significant X-feature of one image, with its map.

    Parameters
    ----------
    x_feature
        Index of the X-feature in the explained class's xNN (0-based).
    contribution, share, rank
        ``w_k * x_k``, its share of the positive score, and its rank (1 = largest).
    heat
        The raw map, float, image-sized (H x W).
    overlay
        What the annotator sees: the image with the map blended on top.
    embedding
        What the map shows (:mod:`xnn_training.maps.embed`), or None in a bundle without embeddings.
    geometry
        The map's :data:`~xnn_training.maps.hot_spot.MAP_GEOMETRY` values, in that order, when
        already measured (explain measures a batch at once); None: the writer measures them.
    """

    x_feature: int
    contribution: float
    share: float
    rank: int
    heat: np.ndarray
    overlay: Image.Image
    embedding: np.ndarray | None = None
    geometry: Sequence[float] | None = None


@dataclass(frozen=True)
class ExplainedImage:
    """An explained image and its significant activations (possibly none)."""

    image_id: str
    category: str
    true_category: str
    prediction: str
    score: float
    image: Image.Image
    activations: Sequence[ActivationMap]
    extra: Mapping[str, Any] = field(default_factory=dict)  # EXTRA_IMAGE_COLUMNS


def activation_id(image_id: str, x_feature: int) -> str:
    """The stable identifier of X-feature ``x_feature`` of image ``image_id``."""
    return f"{image_id}:x{x_feature}"


def _file_stem(image_id: str) -> str:
    """A file-name-safe stem for ``image_id``; distinct ids give distinct stems."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", image_id)
    if stem != image_id or stem in {"", ".", ".."}:
        stem = f"{stem}-{hashlib.sha1(image_id.encode()).hexdigest()[:8]}"
    return stem


def _write_json_atomically(path: Path, content: Mapping[str, Any]) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)


def _write_text_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="") as file:
        file.write(text)
    os.replace(partial, path)


def _text(path: Path) -> str:
    with path.open(newline="") as file:  # as written: csv's \r\n line ends kept
        return file.read()


def _read_table(path: Path) -> tuple[list[str], list[dict[str, str]]] | None:
    """A table's header and rows as written (strings), or None when it does not exist yet.

    What a killed process can leave is dropped: a last line without its newline, and rows
    whose number of fields is not the header's.
    """
    if not path.is_file():
        return None
    text = _text(path)
    text = text[: text.rfind("\n") + 1]
    lines = list(csv.reader(io.StringIO(text)))
    if not lines:
        return None
    header, *rows = lines
    return header, [dict(zip(header, row, strict=True)) for row in rows if len(row) == len(header)]


def _table_text(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


class BundleWriter:
    """Write a map bundle incrementally; reopening the same bundle resumes it.

    One process writes a bundle with one writer. A run sharded over several processes
    (``xnaming explain`` under torchrun, or ``--workers``) has one main writer, in the
    coordinating process, and one part writer per process: each part writer writes its images'
    files into the bundle (distinct paths per image) and its table rows into
    ``parts/<part>/``, so that no two processes append to one file. The main writer merges the
    parts into the bundle's tables (:meth:`merge`) when it opens the bundle and when it
    finishes it.

    Parameters
    ----------
    root
        The bundle directory. Created if missing; if it exists it must be empty or hold a
        bundle with the same ``identity``.
    identity
        What makes two runs the same bundle (the runs, map layer, threshold, which class is
        explained, the split, ...). Stored in the manifest and compared on reopening.
    extra
        Further manifest entries that may change between resumed runs (package versions).
    part
        None: the main writer, which checks or creates the bundle, holds its lock
        (``.lock``: a second run on the same bundle is refused while this one lives), merges
        what earlier runs left in ``parts/`` and writes the tables itself. A name
        (letters, digits, ``-``, ``_``): a part writer, for a bundle its main writer has
        opened; ``extra`` is then ignored.

    Raises
    ------
    BundleError
        ``root`` holds something that is not a bundle, a bundle with another identity, a
        bundle another run is writing; for a part writer, no manifest yet or a part of that
        name left over.
    """

    def __init__(
        self,
        root: Path,
        identity: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
        *,
        part: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.identity = json.loads(json.dumps(dict(identity)))  # plain JSON values only
        self.part = part
        self._lock: IO[str] | None = None
        if part is None:
            self._tables = self.root
            self._open_main(extra or {})
        else:
            self._tables = self._open_part(part)

    # --- opening -------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, Any] | None:
        path = self.root / MANIFEST
        if not path.exists():
            return None
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise BundleError(f"{path} is not valid JSON ({error}); delete the bundle") from error
        return manifest

    def _open_main(self, extra: Mapping[str, Any]) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise BundleError(f"{self.root} is a file; the bundle needs a directory")
        self.root.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._check_or_create()
            self._manifest: dict[str, Any] = {
                "format": BUNDLE_FORMAT,
                "version": BUNDLE_VERSION,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "complete": False,
                **self.identity,
                **extra,
            }
            previous = self._read_manifest()
            if previous is not None:
                self._manifest["created"] = previous["created"]
            _write_json_atomically(self.root / MANIFEST, self._manifest)
            self._done = set(self.merge())
        except BaseException:
            self.close()
            raise

    def _take_lock(self) -> None:
        handle = (self.root / LOCK).open("a")
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EACCES, errno.EAGAIN):
                return  # a file system without locks (an NFS mount with nolock): go unlocked
            handle.close()
            raise BundleError(
                f"{self.root} is being written by another xnaming explain (it holds "
                f"{self.root / LOCK}); let it finish, or stop it, then run this command again"
            ) from error
        self._lock = handle

    def _check_or_create(self) -> None:
        manifest = self._read_manifest()
        if manifest is None:
            if any(path.name != LOCK for path in self.root.iterdir()):
                raise BundleError(
                    f"{self.root} is not empty and holds no {MANIFEST}: it is not a bundle. "
                    "Choose an empty or new output directory."
                )
            return
        self._check_identity(manifest)

    def _check_identity(self, manifest: Mapping[str, Any]) -> None:
        if manifest.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{self.root / MANIFEST} is not an xnaming bundle manifest")
        differing = sorted(key for key in self.identity if manifest.get(key) != self.identity[key])
        if differing:
            details = "; ".join(
                f"{key}: bundle has {manifest.get(key)!r}, this run {self.identity[key]!r}"
                for key in differing
            )
            raise BundleError(
                f"{self.root} holds a different bundle ({details}). "
                "Choose another output directory, or delete this one to start over."
            )

    def _open_part(self, part: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", part):
            raise ValueError(f"part: expected letters, digits, '-' or '_', got {part!r}")
        manifest = self._read_manifest()
        if manifest is None:
            raise BundleError(
                f"{self.root} has no {MANIFEST}: its main writer must open the bundle before "
                "parts are written into it"
            )
        self._check_identity(manifest)
        tables = self.root / PARTS / part
        if tables.exists():
            raise BundleError(
                f"{tables} already exists: another process writes it, or an earlier run left "
                "it and the bundle's main writer has not merged it yet"
            )
        tables.mkdir(parents=True)
        finished = _read_table(self.root / IMAGES_TABLE)
        self._done = {row["image_id"] for row in finished[1]} if finished else set()
        return tables

    # --- merging the parts ---------------------------------------------------------------
    def merge(self, order: Sequence[str] | None = None) -> frozenset[str]:
        """Merge ``parts/`` into the bundle's tables and drop the rows of unfinished images.

        An image is finished where its ``images.csv`` row is (the bundle's own tables first,
        then the parts in name order); its rows in the other tables are taken from that same
        place, so a merge interrupted at any point, then repeated, loses and repeats nothing.
        Tables are replaced atomically, and only when their content changes; the parts are
        deleted afterwards.

        Parameters
        ----------
        order
            Image ids in the order the rows should have (the data set's); images not in it
            come after, in the order they were written. None keeps the written order.

        Returns
        -------
        frozenset of str
            The ids of the finished images.

        Raises
        ------
        BundleError
            Called on a part writer.
        """
        if self.part is not None:
            raise BundleError(f"part {self.part!r}: only the bundle's main writer merges parts")
        parts_dir = self.root / PARTS
        sources = [self.root]
        if parts_dir.is_dir():
            sources += sorted(path for path in parts_dir.iterdir() if path.is_dir())
        read = [
            {name: _read_table(source / name) for name in PER_IMAGE_TABLES} for source in sources
        ]
        finished: dict[str, int] = {}  # image id -> the source holding its images.csv row
        for index, tables in enumerate(read):
            for row in tables[IMAGES_TABLE][1] if tables[IMAGES_TABLE] else []:
                finished.setdefault(row["image_id"], index)
        position = {image_id: i for i, image_id in enumerate(order or ())}
        written = {image_id: i for i, image_id in enumerate(finished)}

        def key(row: Mapping[str, str]) -> int:
            image_id = row["image_id"]
            return position.get(image_id, len(position) + written[image_id])

        # images.csv last: its rows mark images finished, in the bundle as in each part.
        for name in sorted(PER_IMAGE_TABLES, key=lambda n: n == IMAGES_TABLE):
            columns: list[str] = []
            rows: list[dict[str, str]] = []
            for index, tables in enumerate(read):
                if tables[name] is None:
                    continue
                header, table_rows = tables[name]
                columns += [column for column in header if column not in columns]
                rows += [row for row in table_rows if finished.get(row["image_id"]) == index]
            if not columns:
                continue
            rows.sort(key=key)  # stable: an image's rows keep their order
            text = _table_text(columns, rows)
            path = self.root / name
            if not path.is_file() or _text(path) != text:
                _write_text_atomically(path, text)
        for source in sources[1:]:
            shutil.rmtree(source)
        if parts_dir.is_dir() and not any(parts_dir.iterdir()):
            parts_dir.rmdir()
        return frozenset(finished)

    # --- writing -------------------------------------------------------------------------
    @property
    def done(self) -> frozenset[str]:
        """Ids of the images already in the bundle (skip them when resuming)."""
        return frozenset(self._done)

    def add(self, explained: ExplainedImage) -> None:
        """Write one image, its maps and overlays, and its rows.

        Raises
        ------
        BundleError
            The image is already in the bundle.
        """
        if explained.image_id in self._done:
            raise BundleError(f"image {explained.image_id!r} is already in {self.root}")
        stem = _file_stem(explained.image_id)
        image_path = f"images/{stem}.png"
        self._save_image(explained.image, image_path)
        rows, measured = [], []
        for activation, geometry in zip(
            explained.activations, _geometry_of(explained.activations), strict=True
        ):
            map_path = f"maps/{stem}/x{activation.x_feature}.npz"
            overlay_path = f"overlays/{stem}/x{activation.x_feature}.png"
            (self.root / map_path).parent.mkdir(parents=True, exist_ok=True)
            arrays = {"map": np.asarray(activation.heat, np.float32)}
            if activation.embedding is not None:
                arrays[MAP_EMBEDDING] = np.asarray(activation.embedding, np.float32)
            np.savez_compressed(self.root / map_path, **arrays)
            self._save_image(activation.overlay, overlay_path)
            rows.append(
                {
                    "activation_id": activation_id(explained.image_id, activation.x_feature),
                    "image_id": explained.image_id,
                    "category": explained.category,
                    "x_feature": int(activation.x_feature),
                    "contribution": float(activation.contribution),
                    "share": float(activation.share),
                    "rank": int(activation.rank),
                    "map_path": map_path,
                    "overlay_path": overlay_path,
                    "image_path": image_path,
                }
            )
            measured.append(
                dict(zip(GEOMETRY_COLUMNS, (rows[-1]["activation_id"], explained.image_id,
                                            *geometry), strict=True))
            )  # fmt: skip
        self._append("activations.csv", ACTIVATION_COLUMNS, rows)
        self._append(GEOMETRY_TABLE, GEOMETRY_COLUMNS, measured)
        # Last: the images.csv row marks the image finished.
        self._append(
            IMAGES_TABLE,
            IMAGE_COLUMNS + EXTRA_IMAGE_COLUMNS,
            [
                {
                    "image_id": explained.image_id,
                    "category": explained.category,
                    "true_category": explained.true_category,
                    "prediction": explained.prediction,
                    "score": float(explained.score),
                    "n_significant": len(explained.activations),
                    "image_path": image_path,
                    **explained.extra,
                }
            ],
        )
        self._done.add(explained.image_id)

    def _save_image(self, image: Image.Image, relative: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # zlib level 1: 2.5-3x faster than the default 6 for 20-30% larger files; PNG encoding was
        # most of explain's time per image.
        image.convert("RGB").save(path, format="PNG", compress_level=1)

    def _append(self, name: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
        path = self._tables / name
        new = not path.exists()
        if not new and _header(path) not in (None, list(columns)):
            raise BundleError(
                f"{path} has other columns than this version of xnaming writes (begun by an "
                "older one?): explain into a new directory, or delete this one to start over"
            )
        with path.open("a", newline="") as file:  # closed at once: a killed process loses no row
            writer = csv.DictWriter(file, fieldnames=columns)
            if new:
                writer.writeheader()
            writer.writerows(rows)

    def finish(self, summary: pd.DataFrame | None = None) -> Path:
        """Merge what ``parts/`` holds, write ``summary.csv`` (if given) and the manifest with
        every file's sha256, and release the bundle's lock.

        Returns
        -------
        Path
            The bundle directory.

        Raises
        ------
        BundleError
            Called on a part writer.
        """
        if self.part is not None:
            raise BundleError(f"part {self.part!r}: only the bundle's main writer finishes it")
        self.merge()
        for name, columns in (
            ("activations.csv", ACTIVATION_COLUMNS),
            (GEOMETRY_TABLE, GEOMETRY_COLUMNS),
            (IMAGES_TABLE, IMAGE_COLUMNS + EXTRA_IMAGE_COLUMNS),
        ):
            if not (self.root / name).exists():  # an empty bundle still has its tables
                self._append(name, columns, [])
        if summary is not None:
            summary.to_csv(self.root / "summary.csv", index=False)
        files = sorted(
            path
            for path in self.root.rglob("*")
            if path.is_file() and path.name not in (MANIFEST, LOCK)
        )
        self._manifest["files"] = {
            path.relative_to(self.root).as_posix(): sha256(path) for path in files
        }
        self._manifest["complete"] = True
        self._manifest["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        _write_json_atomically(self.root / MANIFEST, self._manifest)
        if self._lock is not None:
            (self.root / LOCK).unlink(missing_ok=True)
        self.close()
        return self.root

    def close(self) -> None:
        """Release the bundle's lock without finishing it (an interrupted run); idempotent."""
        if self._lock is not None:
            self._lock.close()  # closing the file releases its lock
            self._lock = None

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Bundle:
    """A bundle read back: its manifest and its two tables."""

    root: Path
    manifest: dict[str, Any]
    activations: pd.DataFrame
    images: pd.DataFrame

    @property
    def data(self) -> Path | None:
        """The data set the bundle was made from (manifest ``data``, relative to the bundle),
        or ``None`` when the manifest names none."""
        named = self.manifest.get("data")
        return self.root / named if isinstance(named, str) and named else None

    @property
    def concepts(self) -> dict[str, dict[int, str]]:
        """Per category, X-feature -> the concept the explaining xNN was aligned with (manifest
        ``concepts``); empty for an xNN not aligned or a bundle from before."""
        return {
            category: {int(k): concept for k, concept in carried.items()}
            for category, carried in self.manifest.get("concepts", {}).items()
        }

    def check_explained_for(self, dnn_weights: str | Path, *, fix: str) -> None:
        """Refuse, in one line ending with ``fix``, a bundle explained for another classifier
        than the one whose weights file is ``dnn_weights`` (both fingerprints named)."""
        theirs = (self.manifest.get("dnn_run") or {}).get("sha256")
        ours = sha256(dnn_weights)
        if theirs != ours:
            raise ValueError(
                f"bundle: {self.root} was explained for another classifier (its weights "
                f"{theirs}), not this one ({ours}); {fix}"
            )

    def namings_of(
        self, namings: str | Path | pd.DataFrame, *, what: str = "bundle"
    ) -> pd.DataFrame:
        """A namings table (or its CSV) of this bundle's maps, empty cells as ``""``; refused in
        one line when it names activations the bundle does not hold (``what``: how the message
        calls the bundle)."""
        table = namings if isinstance(namings, pd.DataFrame) else pd.read_csv(namings, dtype=str)
        table = table.fillna("")
        unknown = sorted(set(table["activation_id"]) - set(self.activations["activation_id"]))
        if unknown:
            raise ValueError(
                f"namings: {len(unknown)} activation(s) are not in the {what} {self.root} "
                f"(e.g. {unknown[0]!r}); give the namings of that bundle"
            )
        return table

    @property
    def aligned_with(self) -> str | None:
        """Whose concepts the explaining xNN was aligned with (an annotator, or "consensus");
        None for an xNN not aligned (manifest ``alignment``)."""
        alignment = self.manifest.get("alignment") or {}
        return alignment.get("annotator")


def _header(path: Path) -> list[str] | None:
    """The column names of a CSV table (None for an empty file)."""
    with path.open(newline="") as file:
        return next(csv.reader(file), None)


def _geometry_of(activations: Sequence[ActivationMap]) -> list[Sequence[float]]:
    """Each map's geometry: as given, else measured here (all of the image's maps at once
    when they share a size)."""
    missing = [a for a in activations if a.geometry is None]
    if not missing:
        return [a.geometry for a in activations]  # type: ignore[misc]
    import torch

    shapes = {np.shape(a.heat) for a in missing}
    if len(shapes) == 1:
        heat = torch.from_numpy(np.stack([np.asarray(a.heat, np.float32) for a in missing]))
        measured = iter(map_geometry(heat).tolist())
    else:
        measured = iter(list(describe_map(a.heat).values()) for a in missing)
    return [a.geometry if a.geometry is not None else next(measured) for a in activations]


def read_table(path: Path) -> pd.DataFrame:
    """One of a bundle's CSV tables, or a table in its format (docs/formats.md).

    Identifiers (``activation_id``, ``image_id``, categories and predictions) are kept as
    strings, also when they look like numbers, and empty cells as ``""``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    """
    return pd.read_csv(path, dtype=dict.fromkeys(_STRING_COLUMNS, str), keep_default_na=False)


def read_bundle(root: Path, *, require_complete: bool = True) -> Bundle:
    """Read and check a map bundle.

    Parameters
    ----------
    root
        The bundle directory (as written by ``xnaming explain``).
    require_complete
        Refuse a bundle whose writing was interrupted.

    Raises
    ------
    BundleError
        Missing files or columns, an unfinished bundle, duplicate activation ids, or
        activations of images not listed in ``images.csv``; the message says which.
    """
    root = Path(root)
    if not (root / MANIFEST).is_file():
        raise BundleError(
            f"{root} is not a map bundle: {MANIFEST} is missing (make one with `xnaming explain`)"
        )
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except json.JSONDecodeError as error:
        raise BundleError(f"{root / MANIFEST} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{root / MANIFEST} is not an xnaming bundle manifest")
    if require_complete and not manifest.get("complete"):
        raise BundleError(
            f"{root} is unfinished (its explain run was interrupted): run the same "
            "`xnaming explain` command again to complete it"
        )
    tables = {}
    for name, columns in (("activations.csv", ACTIVATION_COLUMNS), ("images.csv", IMAGE_COLUMNS)):
        path = root / name
        if not path.is_file():
            raise BundleError(f"{path} is missing")
        table = read_table(path)
        missing = [column for column in columns if column not in table.columns]
        if missing:
            raise BundleError(f"{path} lacks the columns {missing}")
        tables[name] = table
    activations, images = tables["activations.csv"], tables["images.csv"]
    duplicated = activations["activation_id"][activations["activation_id"].duplicated()]
    if len(duplicated):
        raise BundleError(f"{root}/activations.csv repeats activation ids {list(duplicated[:5])}")
    orphans = sorted(set(activations["image_id"]) - set(images["image_id"]))
    if orphans:
        raise BundleError(f"{root}/activations.csv has images not in images.csv: {orphans[:5]}")
    return Bundle(root, manifest, activations, images)


def bundle_geometry(bundle: Bundle, *, warn: Callable[[str], None] | None = None) -> pd.DataFrame:
    """The :data:`~xnn_training.maps.hot_spot.MAP_GEOMETRY` of every map of ``bundle``: a
    table with those columns and the index of ``bundle.activations``.

    Read from ``geometry.csv``, where explain wrote them. A bundle made before that has
    them measured here, from its map files, once per :class:`Bundle` (kept on it), saying so
    once through ``warn`` (default: a :class:`UserWarning`).

    Raises
    ------
    BundleError
        A map file that cannot be read (for a bundle without the columns).
    """
    kept = bundle.__dict__.get("_geometry")
    if kept is not None:
        return kept
    table = bundle.activations
    ids = table["activation_id"]
    path = bundle.root / GEOMETRY_TABLE
    stored = read_table(path).set_index("activation_id") if path.is_file() else None
    if stored is not None and set(MAP_GEOMETRY) <= set(stored.columns):
        geometry = stored.reindex(ids).loc[:, list(MAP_GEOMETRY)].astype(np.float64)
    else:
        geometry = pd.DataFrame(np.nan, index=ids, columns=list(MAP_GEOMETRY))
    geometry.index = table.index
    missing = geometry.isna().any(axis=1).to_numpy()
    if missing.any():
        message = (
            f"warning: {bundle.root} was made before xnaming kept each map's geometry in "
            f"{GEOMETRY_TABLE}: it is measured now from {int(missing.sum())} map files (once; "
            "re-run `xnaming explain` into a new directory to have it in the bundle)"
        )
        if warn is None:
            warnings.warn(message, UserWarning, stacklevel=2)
        else:
            warn(message)
        geometry.loc[missing] = [
            _measure(bundle.root / path) for path in table.loc[missing, "map_path"]
        ]
    object.__setattr__(bundle, "_geometry", geometry)
    return geometry


def _measure(path: Path) -> list[float]:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return list(describe_map(arrays["map"]).values())
    except (OSError, KeyError, ValueError) as error:
        raise BundleError(f"map {path}: {error} (see docs/formats.md, bundle maps)") from None
