"""Small pictures of a bundle's maps for the report, embedded so report.html stays one file.

Each thumbnail is the overlay the annotators saw (``overlays/<image>/x<k>.png`` of the map
bundle), scaled to :data:`SIZE` pixels and written as a WebP ``data:`` URI of about 1 KB, so the
report opens offline, can be mailed alone, and holds a few thousand maps in a few MB. A map
whose file is missing (a bundle that moved, another bundle's activations) gets no picture: the
report shows a placeholder naming the file, and :attr:`Thumbnails.missing` lists what was not
found, for the report's notes. Thumbnails are made once per map, several at a time (image
decoding releases the GIL).
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from xnn_training.bundle.io import BundleError, read_bundle

__all__ = ["SIZE", "Thumb", "Thumbnails"]

SIZE = 96
"""Side of a thumbnail in pixels (shown at 72 to 96 CSS pixels)."""
_QUALITY = 80


@dataclass(frozen=True)
class Thumb:
    """A map's picture: ``src`` is a data URI, or None with ``missing`` saying what is lacking."""

    activation_id: str
    src: str | None
    missing: str | None = None


@dataclass
class Thumbnails:
    """The thumbnails of one bundle's maps.

    Build with :meth:`from_bundle`; :meth:`get` gives one map's :class:`Thumb`.

    Attributes
    ----------
    root
        The bundle directory (None: no bundle, so no pictures).
    overlays
        Activation id -> overlay path relative to ``root``.
    problem
        Why there are no pictures at all (no bundle given, not a bundle), or None.
    """

    root: Path | None
    overlays: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    size: int = SIZE
    _cache: dict[str, Thumb] = field(default_factory=dict, repr=False)

    @classmethod
    def from_bundle(cls, bundle: str | Path | None, *, size: int = SIZE) -> Thumbnails:
        """Read the bundle's activations table; never raises for a bad bundle (see ``problem``)."""
        if bundle is None:
            return cls(None, problem="no map bundle was given (--bundle), so no maps are shown")
        root = Path(bundle)
        try:
            content = read_bundle(root, require_complete=False)
        except (BundleError, OSError, ValueError) as error:
            return cls(None, problem=f"the map bundle could not be read ({error}); no maps shown")
        table = content.activations
        overlays = dict(zip(table["activation_id"].astype(str), table["overlay_path"], strict=True))
        return cls(root, overlays, size=size)

    @property
    def missing(self) -> list[str]:
        """What was asked for and not found: missing files and unknown activation ids."""
        return sorted(t.missing for t in self._cache.values() if t.src is None and t.missing)

    def prepare(self, activation_ids: Iterable[str]) -> None:
        """Make the thumbnails of ``activation_ids`` now, several at a time."""
        wanted = sorted({str(a) for a in activation_ids} - set(self._cache))
        if not wanted:
            return
        workers = min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for thumb in pool.map(self._make, wanted):
                self._cache[thumb.activation_id] = thumb

    def get(self, activation_id: str) -> Thumb:
        """The thumbnail of one map (made now if :meth:`prepare` did not)."""
        activation_id = str(activation_id)
        if activation_id not in self._cache:
            self._cache[activation_id] = self._make(activation_id)
        return self._cache[activation_id]

    def _make(self, activation_id: str) -> Thumb:
        if self.root is None:
            return Thumb(activation_id, None, None)
        relative = self.overlays.get(activation_id)
        if relative is None:
            return Thumb(activation_id, None, f"{activation_id} (not in the bundle)")
        try:
            with Image.open(self.root / relative) as handle:
                picture = handle.convert("RGB")
        except (FileNotFoundError, UnidentifiedImageError, OSError):
            return Thumb(activation_id, None, relative)
        picture.thumbnail((self.size, self.size), Image.Resampling.BICUBIC, reducing_gap=2.0)
        buffer = io.BytesIO()
        picture.save(buffer, format="WEBP", quality=_QUALITY, method=2)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        return Thumb(activation_id, f"data:image/webp;base64,{data}")
