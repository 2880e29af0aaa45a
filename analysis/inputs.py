"""Reading and checking the two inputs of the analysis: the activations table and the namings.

The activations table (``activations.csv`` of a map bundle) defines the universe: every
significant activation of every category. Namings are tidy rows (annotator, category,
activation_id, concept, status), read from tidy CSV files or Label Studio JSON exports.
Every check raises :class:`ValueError` naming the source, the rows and how to fix them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from label_config import (
    MADE_BY,
    MADE_BY_VALUES,
    NAMED,
    NAMINGS_COLUMNS,
    PERSON,
    SIMULATED,
    STATUSES,
    read_label_studio_export,
)
from xnn_training.bundle.io import read_bundle, read_table

__all__ = [
    "ACTIVATION_COLUMNS",
    "SHARE",
    "check_activations",
    "check_namings",
    "load_namings",
    "read_activations",
    "read_namings_csv",
]

ACTIVATION_COLUMNS = ("activation_id", "image_id", "category", "x_feature")
SHARE = "share"
"""Optional activations column: the map's share of its decision's positive score (the bundle
has it); the decisions to distrust weigh maps by it, and weigh them equally without it."""
_SHOWN = 5  # offending values quoted in an error message


def _quote(values: Sequence[object]) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def _as_text(column: pd.Series) -> pd.Series:
    """Identifiers and names as stripped str ("" for missing), whatever type they came as."""
    return column.astype(object).where(column.notna(), "").astype(str).str.strip()


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str, source: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: {what} lack the column(s) {_quote(missing)}; "
            f"expected {', '.join(columns)} (found {_quote(list(frame.columns))})"
        )


def read_activations(path: str | Path) -> pd.DataFrame:
    """Read and check a bundle's ``activations.csv``, or that of the bundle directory ``path``.

    The bundle's own reader (:mod:`xnn_training.bundle.io`) reads it, so identifiers stay strings;
    a CSV file needs only the columns of :data:`ACTIVATION_COLUMNS`.
    """
    path = Path(path)
    frame = read_bundle(path).activations if path.is_dir() else read_table(path)
    return check_activations(frame, source=str(path))


def check_activations(activations: pd.DataFrame, *, source: str = "activations") -> pd.DataFrame:
    """Check the activations table and return its needed columns with clean types.

    Parameters
    ----------
    activations
        Columns activation_id, image_id, category, x_feature (others are ignored).
    source
        Where the table came from, for error messages.

    Returns
    -------
    pandas.DataFrame
        activation_id, image_id, category as str; x_feature as int; ``share`` (float) when
        the table has it.

    Raises
    ------
    ValueError
        A column is missing, an identifier is empty, an activation id repeats, an X-feature
        is not a whole number, or a share is not a non-negative number.
    """
    _require_columns(activations, ACTIVATION_COLUMNS, "activations", source)
    columns = [*ACTIVATION_COLUMNS, *([SHARE] if SHARE in activations.columns else [])]
    frame = activations.loc[:, columns].copy()
    for column in ("activation_id", "image_id", "category"):
        frame[column] = _as_text(frame[column])
        empty = frame.index[frame[column] == ""]
        if len(empty):
            raise ValueError(f"{source}: empty {column} in row(s) {_quote([i + 2 for i in empty])}")
    repeated = frame.loc[frame["activation_id"].duplicated(), "activation_id"].unique()
    if len(repeated):
        raise ValueError(f"{source}: activation_id must be unique; repeated: {_quote(repeated)}")
    x = pd.to_numeric(frame["x_feature"], errors="coerce")
    bad = frame.index[x.isna() | (x != x.round())]
    if len(bad):
        values = _quote(frame.loc[bad, "x_feature"].tolist())
        raise ValueError(
            f"{source}: x_feature must be a whole number; bad value(s) {values} "
            f"in row(s) {_quote([i + 2 for i in bad])}"
        )
    frame["x_feature"] = x.astype(int)
    if SHARE in frame.columns:
        share = pd.to_numeric(frame[SHARE], errors="coerce")
        bad = frame.index[share.isna() | (share < 0)]
        if len(bad):
            raise ValueError(
                f"{source}: share must be a non-negative number; bad value(s) "
                f"{_quote(frame.loc[bad, SHARE].tolist())} in row(s) {_quote([i + 2 for i in bad])}"
            )
        frame[SHARE] = share.astype(float)
    return frame.reset_index(drop=True)


def read_namings_csv(path: str | Path) -> pd.DataFrame:
    """Read a tidy namings CSV (columns annotator, category, activation_id, concept, status)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return check_namings(frame, source=str(path))


def check_namings(
    namings: pd.DataFrame,
    activations: pd.DataFrame | None = None,
    *,
    source: str = "namings",
) -> pd.DataFrame:
    """Check a tidy namings table; with ``activations``, also check it against the universe.

    Rules: ``status`` is one of named, unnamed, discarded (case-insensitive); a named row needs
    a concept; the concept of a row that is not named is ignored (set to ""); concepts and
    annotators of any type are compared as strings; one row per annotator and activation.

    Raises
    ------
    ValueError
        Naming the source, the rows and what to fix: a missing column, an unknown status, a
        named row without a concept, an empty annotator or activation id, a repeated
        (annotator, activation_id), an activation id absent from the activations table, or a
        category that differs from the activation's category there.
    """
    _require_columns(namings, NAMINGS_COLUMNS, "namings", source)
    frame = namings.loc[:, list(NAMINGS_COLUMNS)].copy().reset_index(drop=True)
    for column in NAMINGS_COLUMNS:
        frame[column] = _as_text(frame[column])
    row = frame.index + 2  # the line in a CSV file with one header line
    if SIMULATED in namings.columns or MADE_BY in namings.columns:
        frame[MADE_BY] = _made_by(namings.reset_index(drop=True), row, source)
        frame[SIMULATED] = frame[MADE_BY] == SIMULATED
    frame["status"] = frame["status"].str.lower()
    for column in ("annotator", "activation_id"):
        empty = row[frame[column] == ""]
        if len(empty):
            raise ValueError(f"{source}: empty {column} in row(s) {_quote(list(empty))}")
    unknown = ~frame["status"].isin(STATUSES)
    if unknown.any():
        raise ValueError(
            f"{source}: status must be one of {', '.join(STATUSES)}; found "
            f"{_quote(frame.loc[unknown, 'status'].unique().tolist())} in row(s) "
            f"{_quote(list(row[unknown]))}"
        )
    nameless = (frame["status"] == NAMED) & (frame["concept"] == "")
    if nameless.any():
        raise ValueError(
            f"{source}: row(s) {_quote(list(row[nameless]))} are {NAMED!r} without a concept; "
            "give the concept's name (a generated one such as 'group 3' if it has none)"
        )
    frame.loc[frame["status"] != NAMED, "concept"] = ""
    repeated = frame.duplicated(["annotator", "activation_id"], keep=False)
    if repeated.any():
        pairs = frame.loc[repeated, ["annotator", "activation_id"]].drop_duplicates()
        raise ValueError(
            f"{source}: {len(pairs)} (annotator, activation_id) pair(s) appear more than once, "
            f"e.g. {_quote([tuple(p) for p in pairs.itertuples(index=False)])} in rows "
            f"{_quote(list(row[repeated]))}; keep one row per annotator and activation"
        )
    if activations is not None:
        _check_against_activations(frame, activations, source)
    return frame


def _made_by(namings: pd.DataFrame, row: pd.Index, source: str) -> pd.Series:
    """Who made each row (``made_by``; empty: a person), also from the older ``simulated``
    column (``true`` = simulated), which `xnaming simulate` writes."""
    made_by = pd.Series(PERSON, index=namings.index)
    if SIMULATED in namings.columns:
        flags = _as_text(namings[SIMULATED]).str.lower()
        made_by[flags.isin(["true", "1", "yes"])] = SIMULATED
    if MADE_BY in namings.columns:
        given = _as_text(namings[MADE_BY]).str.strip().str.lower()
        unknown = (given != "") & ~given.isin(MADE_BY_VALUES)
        if unknown.any():
            raise ValueError(
                f"{source}: {MADE_BY} must be one of {', '.join(MADE_BY_VALUES)} (or empty); "
                f"found {_quote(given[unknown].unique().tolist())} in row(s) "
                f"{_quote(list(row[unknown]))}"
            )
        made_by[given != ""] = given[given != ""]
    return made_by


def _check_against_activations(frame: pd.DataFrame, activations: pd.DataFrame, source: str) -> None:
    category_of = dict(zip(activations["activation_id"], activations["category"], strict=True))
    unknown = ~frame["activation_id"].isin(category_of)
    if unknown.any():
        ids = frame.loc[unknown, "activation_id"].unique().tolist()
        raise ValueError(
            f"{source}: {len(ids)} activation id(s) are not in the activations table, e.g. "
            f"{_quote(ids)} (annotator(s) {_quote(frame.loc[unknown, 'annotator'].unique())}); "
            "were the namings made from another bundle?"
        )
    expected = frame["activation_id"].map(category_of)
    given = frame["category"] != ""
    wrong = given & (frame["category"] != expected)
    if wrong.any():
        first = frame[wrong].iloc[0]
        raise ValueError(
            f"{source}: {int(wrong.sum())} row(s) give a category that differs from the "
            f"activations table, e.g. {first['activation_id']!r} is in "
            f"{category_of[first['activation_id']]!r}, not {first['category']!r}"
        )
    frame["category"] = expected


def load_namings(paths: Sequence[str | Path], activations: pd.DataFrame) -> pd.DataFrame:
    """Read namings files in order; a later file's row for the same annotator and activation wins.

    Parameters
    ----------
    paths
        Tidy CSV files (``.csv``) or Label Studio JSON exports (``.json``), in the order
        they were made.
    activations
        The checked activations table (see :func:`check_activations`).

    Returns
    -------
    pandas.DataFrame
        One checked tidy namings table. A :class:`UserWarning` says how many rows a later file
        replaced.
    """
    if not paths:
        raise ValueError("no namings files given")
    frames = []
    for path in paths:
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            frame = read_namings_csv(path)
        elif suffix == ".json":
            frame = check_namings(read_label_studio_export(path), source=str(path))
        else:
            raise ValueError(f"{path}: namings must be a tidy .csv or a Label Studio .json export")
        _check_against_activations(frame, activations, str(path))
        frames.append(frame.assign(_order=len(frames)))
    merged = pd.concat(frames, ignore_index=True)
    replaced = merged.duplicated(["annotator", "activation_id"], keep="last")
    if replaced.any():
        warnings.warn(
            f"{int(replaced.sum())} naming row(s) were replaced by a later file's row for the "
            "same annotator and activation (the later export wins)",
            UserWarning,
            stacklevel=2,
        )
    merged = merged[~replaced].drop(columns="_order")
    if MADE_BY in merged.columns:  # rows of files without the marker: made by people
        merged[MADE_BY] = merged[MADE_BY].fillna(PERSON)
        merged[SIMULATED] = merged[MADE_BY] == SIMULATED
    return merged.reset_index(drop=True)
