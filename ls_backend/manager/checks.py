"""What ``xnaming publish`` checks before it changes anything in Label Studio.

A publish that stops half-way leaves accounts and projects behind, so everything that can be
checked on this side is checked first: the bundle lies under Label Studio's files root (the
local files storage would be refused), its files are the ones its manifest lists (sha256), and
every file a task points to lies inside the bundle (a map path of ``../../etc/passwd`` would
otherwise be opened, and served).
"""

from __future__ import annotations

from pathlib import Path

from xnn_training.bundle.io import Bundle, BundleError
from xnn_training.files import sha256

__all__ = ["PATH_COLUMNS", "check_bundle_files", "check_under_files_root"]

PATH_COLUMNS = ("map_path", "overlay_path", "image_path")
"""The columns of ``activations.csv`` that name files of the bundle."""

_TABLES = ("activations.csv", "images.csv")


def check_under_files_root(bundle: Path, files_root: Path) -> None:
    """Raise ValueError unless ``bundle`` lies under ``files_root`` (both resolved)."""
    try:
        Path(bundle).resolve().relative_to(Path(files_root).resolve())
    except ValueError:
        raise ValueError(
            f"{bundle} is not under Label Studio's files root {files_root}: move the bundle there "
            "or start Label Studio with `xnaming ls start --files-root DIR` above the bundle"
        ) from None


def _inside(bundle: Path, relative: str, where: str) -> str:
    """``relative`` as a path inside ``bundle`` (posix), or BundleError naming ``where``."""
    root = bundle.resolve()
    path = (root / relative).resolve()
    if not relative or Path(relative).is_absolute() or not path.is_relative_to(root):
        raise BundleError(
            f"{where} points outside the bundle {bundle}: {relative!r} (a bundle's files lie "
            "inside it; re-run `xnaming explain`)"
        )
    return path.relative_to(root).as_posix()


def check_bundle_files(bundle: Bundle) -> None:
    """Every file a task will point to lies inside the bundle and matches the manifest.

    Parameters
    ----------
    bundle
        The bundle as :func:`xnn_training.bundle.io.read_bundle` read it.

    Raises
    ------
    xnn_training.bundle.io.BundleError
        A path outside the bundle (names the activation and the column), a file the manifest
        does not list, or one whose sha256 differs from the manifest's (names the file).
    """
    listed = bundle.manifest.get("files")
    if not isinstance(listed, dict):
        raise BundleError(
            f"{bundle.root}/manifest.json lists no files with their sha256: re-run `xnaming "
            "explain` to finish the bundle"
        )
    wanted = [name for name in _TABLES if name in listed or (bundle.root / name).exists()]
    wanted += [name for name in ("embeddings.npz",) if name in listed]
    for row in bundle.activations.itertuples():
        for column in PATH_COLUMNS:
            relative = str(getattr(row, column))
            wanted.append(_inside(bundle.root, relative, f"{row.activation_id}: {column}"))
    for name in dict.fromkeys(wanted):
        if name not in listed:
            raise BundleError(
                f"{bundle.root / name} is not in the bundle's manifest: the bundle was changed "
                "after `xnaming explain` wrote it; re-run explain"
            )
        path = bundle.root / name
        if not path.is_file() or sha256(path) != listed[name]:
            state = (
                "is missing" if not path.is_file() else "differs from its sha256 in manifest.json"
            )
            raise BundleError(
                f"{path} {state}: the bundle was changed after `xnaming explain` wrote it; "
                "re-run explain (or restore the file)"
            )
