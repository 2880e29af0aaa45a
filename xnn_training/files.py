"""How runs and bundles record files: their sha256 and paths relative to the recording file.

docs/formats.md: a bundle's manifest lists every file with its sha256, an xNN run names the
hash of the DNN weights it explains, and every path written inside a file is relative to the
directory holding that file, with ``/`` as separator. Light (standard library only), so the
bundle's reader and writer use it without importing torch.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["relative", "sha256"]


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def relative(path: str | Path, start: str | Path) -> str:
    """``path`` relative to directory ``start``, with ``/`` separators (docs/formats.md)."""
    return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()
