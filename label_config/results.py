"""Read Label Studio JSON exports into the tidy namings table.

The one reader of Label Studio exports: ``xnaming collect``, ``xnaming analyze`` and the ML
backend (learning from an annotation) all use it. Pure (json + pandas); it never imports Label
Studio. The rules are those of ``docs/formats.md`` ("Label Studio tasks and results"):

- Board task (task data has ``items``): an activation in ranker bucket ``gI`` is ``named`` with
  the last text of ``gI_name`` (stripped), or ``group I`` when that is empty; in ``discard`` it
  is ``discarded``; under ``_`` or absent it is ``unnamed``.
- Per-map task (task data has ``activation_id``): a ``discard`` choice makes it ``discarded``;
  else the last element of the first taxonomy path makes it ``named``; else ``unnamed``.
- Cancelled (skipped) annotations are ignored. When a task has several annotations, the one
  updated last (``updated_at``, then ``id``) wins, with a warning.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from label_config.controls import (
    BOARD_DISCARD,
    BOARD_RANKER,
    PER_MAP_CONCEPT,
    PER_MAP_DISCARD,
    PER_MAP_DISCARD_CHOICE,
    UNSORTED,
    group_name_control,
    group_of_bucket,
    group_of_name_control,
)
from label_config.namings import (
    DISCARDED,
    NAMED,
    NAMINGS_COLUMNS,
    UNNAMED,
    unnamed_group_concept,
)
from label_config.tasks import (
    ACTIVATION_ID,
    ANNOTATOR,
    BOARD,
    CATEGORY,
    ITEM_ID,
    ITEMS,
    task_kind,
)

__all__ = ["ExportError", "read_label_studio_export"]


class ExportError(ValueError):
    """A Label Studio export that does not follow ``docs/formats.md``."""


def read_label_studio_export(source: str | Path | list[dict]) -> pd.DataFrame:
    """Turn a Label Studio JSON export into the tidy namings table.

    Parameters
    ----------
    source
        Path to a JSON export file (a list of tasks, each with ``data`` and ``annotations``),
        or that list itself.

    Returns
    -------
    pandas.DataFrame
        Columns ``annotator, category, activation_id, concept, status``, one row per activation
        of every task (also unannotated tasks: their activations are ``unnamed``), in export
        order. ``concept`` is ``""`` unless ``status`` is ``named``.

    Raises
    ------
    ExportError
        When the export is malformed; the message names the task id and annotation id.
    TypeError
        When ``source`` is neither a path nor a list.
    """
    tasks = _load(source)
    rows: list[dict[str, str]] = []
    for position, task in enumerate(tasks):
        rows.extend(_task_rows(task, position))
    return pd.DataFrame(rows, columns=list(NAMINGS_COLUMNS)).astype(str)


def _load(source: str | Path | list[dict]) -> list[dict]:
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            tasks = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ExportError(f"{path}: not valid JSON ({error})") from error
        where = str(path)
    elif isinstance(source, list):
        tasks, where = source, "export"
    else:
        raise TypeError(
            f"source must be a path or a list of task dicts, got {type(source).__name__}"
        )
    if not isinstance(tasks, list):
        raise ExportError(
            f"{where}: expected a JSON list of tasks (Label Studio's JSON export), "
            f"got {type(tasks).__name__}"
        )
    return tasks


def _field(mapping: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ExportError(f"{where}: missing field {key!r}")
    value = mapping[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ExportError(f"{where}: field {key!r} must be {names}, got {type(value).__name__}")
    return value


def _task_rows(task: Any, position: int) -> list[dict[str, str]]:
    if not isinstance(task, dict):
        raise ExportError(f"task #{position}: expected an object, got {type(task).__name__}")
    task_id = task.get("id", f"#{position}")
    where = f"task {task_id}"
    data = _field(task, "data", dict, where)
    annotator = str(_field(data, ANNOTATOR, str, f"{where} data"))
    category = str(_field(data, CATEGORY, (str, int), f"{where} data"))
    try:
        board = task_kind(data) == BOARD
    except ValueError as error:
        raise ExportError(f"{where}: {error}") from None
    if board:
        activation_ids = _board_activation_ids(data, where)
        read = _read_board
    else:
        activation_ids = [str(_field(data, ACTIVATION_ID, (str, int), f"{where} data"))]
        read = _read_per_map
    outcome = {aid: ("", UNNAMED) for aid in activation_ids}
    annotation = _winning_annotation(task, task_id)
    if annotation is not None:
        where_ann = f"{where} annotation {annotation.get('id')}"
        result = _field(annotation, "result", list, where_ann)
        outcome.update(read(result, activation_ids, where_ann))
    return [
        dict(zip(NAMINGS_COLUMNS, (annotator, category, aid, concept, status), strict=True))
        for aid, (concept, status) in outcome.items()
    ]


def _board_activation_ids(data: dict, where: str) -> list[str]:
    items = _field(data, ITEMS, list, f"{where} data")
    ids = [
        str(_field(item, ITEM_ID, (str, int), f"{where} data {ITEMS}[{i}]"))
        for i, item in enumerate(items)
    ]
    if len(set(ids)) != len(ids):
        raise ExportError(f"{where}: duplicate activation ids in task data {ITEMS!r}")
    return ids


def _winning_annotation(task: dict, task_id: Any) -> dict | None:
    annotations = task.get("annotations", [])
    if not isinstance(annotations, list):
        raise ExportError(f"task {task_id}: field 'annotations' must be list")
    valid = []
    for index, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise ExportError(f"task {task_id} annotation #{index}: expected an object")
        if annotation.get("was_cancelled"):
            continue
        valid.append(annotation)
    if len(valid) > 1:
        valid.sort(key=lambda a: (str(a.get("updated_at") or ""), _sortable_id(a.get("id"))))
        warnings.warn(
            f"task {task_id}: {len(valid)} annotations "
            f"({', '.join(str(a.get('id')) for a in valid)}); "
            f"using the one updated last ({valid[-1].get('id')})",
            stacklevel=4,
        )
    return valid[-1] if valid else None


def _sortable_id(value: Any) -> tuple[int, str]:
    return (int(value), "") if isinstance(value, int) else (0, str(value))


def _region(region: Any, index: int, where: str) -> tuple[str, str, dict]:
    where = f"{where} result[{index}]"
    kind = _field(region, "type", str, where)
    name = _field(region, "from_name", str, where)
    return kind, name, _field(region, "value", dict, where)


def _expect_kind(kind: str, expected: str, name: str, where: str) -> None:
    if kind != expected:
        raise ExportError(f"{where}: control {name!r} must give a {expected} result, got {kind!r}")


def _read_board(result: list, activation_ids: list[str], where: str) -> dict[str, tuple[str, str]]:
    known = set(activation_ids)
    buckets: dict[str, list[str]] = {}
    names: dict[int, str] = {}
    for index, region in enumerate(result):
        kind, name, value = _region(region, index, where)
        if name == BOARD_RANKER:
            _expect_kind(kind, "ranker", name, where)
            ranker = _field(value, "ranker", dict, f"{where} result[{index}] value")
            for bucket, members in ranker.items():
                if not isinstance(members, list):
                    raise ExportError(f"{where}: ranker bucket {bucket!r} must be a list")
                buckets[bucket] = [str(m) for m in members]
        elif (group := group_of_name_control(name)) is not None:
            _expect_kind(kind, "textarea", name, where)
            texts = _field(value, "text", list, f"{where} result[{index}] value")
            names[group] = str(texts[-1]).strip() if texts else ""
        else:
            raise ExportError(
                f"{where}: unknown control {name!r} for a board task "
                f"(expected {BOARD_RANKER!r} or {group_name_control('N')!r})"
            )
    outcome: dict[str, tuple[str, str]] = {}
    for bucket, members in buckets.items():
        unknown = sorted(set(members) - known)
        if unknown:
            raise ExportError(
                f"{where}: activation ids not in the task's items: {', '.join(unknown[:5])}"
            )
        if bucket == UNSORTED:
            status_of = ("", UNNAMED)
        elif bucket == BOARD_DISCARD:
            status_of = ("", DISCARDED)
        elif (group := group_of_bucket(bucket)) is not None:
            status_of = (names.get(group) or unnamed_group_concept(group), NAMED)
        else:
            raise ExportError(f"{where}: unknown ranker bucket {bucket!r}")
        if bucket == UNSORTED:
            continue  # unsorted: already the default
        for member in members:
            if member in outcome:
                raise ExportError(f"{where}: activation {member} is in more than one bucket")
            outcome[member] = status_of
    return outcome


def _read_per_map(
    result: list, activation_ids: list[str], where: str
) -> dict[str, tuple[str, str]]:
    concept: str | None = None
    discarded = False
    for index, region in enumerate(result):
        kind, name, value = _region(region, index, where)
        if name == PER_MAP_DISCARD:
            _expect_kind(kind, "choices", name, where)
            choices = _field(value, "choices", list, f"{where} result[{index}] value")
            discarded = discarded or PER_MAP_DISCARD_CHOICE in choices
        elif name == PER_MAP_CONCEPT:
            _expect_kind(kind, "taxonomy", name, where)
            paths = _field(value, "taxonomy", list, f"{where} result[{index}] value")
            if paths and concept is None:
                first = paths[0]
                if not isinstance(first, list) or not first:
                    raise ExportError(f"{where}: taxonomy path must be a non-empty list")
                concept = str(first[-1]).strip() or None
        else:
            raise ExportError(
                f"{where}: unknown control {name!r} for a per-map task "
                f"(expected {PER_MAP_CONCEPT!r} or {PER_MAP_DISCARD!r})"
            )
    (activation_id,) = activation_ids
    if discarded:
        return {activation_id: ("", DISCARDED)}
    if concept:
        return {activation_id: (concept, NAMED)}
    return {activation_id: ("", UNNAMED)}
