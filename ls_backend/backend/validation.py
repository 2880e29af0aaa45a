"""What the ML backend refuses before any work: bodies too big, non-finite numbers, huge boards.

Every request body is read with a size cap and parsed as strict JSON: Python's ``json`` takes
``NaN``, ``Infinity`` and ``1e999`` (which overflows to infinity) as numbers, and one such value
in a heat centre would silently poison the distances of every proposal made from it. A refused
body is parsed a second time, only then, to say where the bad number sits. A ``/predict``
request is then held to :data:`MAX_BOARD_MAPS` per task and :data:`MAX_REQUEST_MAPS` in all,
which bounds the time one request holds a server thread.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from label_config.tasks import DESCRIPTORS_KEY, HEAT_X, HEAT_Y, MAPS, map_entries

__all__ = [
    "MAX_BOARD_MAPS",
    "MAX_REQUEST_BYTES",
    "MAX_REQUEST_MAPS",
    "BadRequest",
    "TooLarge",
    "check_body_size",
    "check_map_numbers",
    "check_predict_bounds",
    "check_webhook_bounds",
    "parse_body",
    "project_id",
    "require",
]

MAX_BOARD_MAPS = 2_000
"""The most maps one ``/predict`` task (a board) may hold; a bigger board is answered 413."""

MAX_REQUEST_MAPS = 20_000
"""The most maps one ``/predict`` request may hold in all its tasks (a per-map task counts 1)."""

MAX_REQUEST_BYTES = 32 * 1024 * 1024
"""The largest request body the backend reads (32 MiB); a bigger one is answered 413 unread.

Room for :data:`MAX_REQUEST_MAPS` per-map tasks as Label Studio sends them (about 1.5 kB each
with their annotations), or ten full boards (about 0.5 kB a map)."""

_INT_RANGE = (-(2**63), 2**63 - 1)  # SQLite's integers: a bigger id would fail in the learner


class BadRequest(ValueError):
    """Input the backend cannot use; answered with 400 and this message."""


class TooLarge(BadRequest):
    """A request over the backend's bounds; answered with 413 and this message."""


def require(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` when it is of ``kind`` (a bool is no number), else :class:`BadRequest`."""
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = (
            kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        )
        raise BadRequest(f"{what} must be {expected}, got {type(value).__name__}")
    return value


def project_id(value: Any, what: str) -> int:
    """Label Studio sends project ids as ``1``, ``"1"``, ``"1.1700000000"`` or ``{"id": 1}``."""
    if isinstance(value, dict):
        value = value.get("id")
    try:
        return int(str(value).split(".")[0])
    except (TypeError, ValueError):
        raise BadRequest(f"{what} must be a Label Studio project id, got {value!r}") from None


class _Refused(Exception):
    """Raised by the strict parser's number hooks (not a ValueError, so never mistaken for
    a syntax error)."""


class _Marker:
    """Stands for a refused number while locating it."""

    def __init__(self, text: str, why: str) -> None:
        self.text, self.why = text, why


def _strict_constant(text: str) -> float:
    raise _Refused(text)


def _strict_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(text)
    return value


def _strict_int(text: str) -> int:
    value = int(text)
    if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise _Refused(text)
    return value


def _marking_float(text: str) -> float | _Marker:
    value = float(text)
    return value if math.isfinite(value) else _Marker(text, "overflows to infinity")


def _marking_int(text: str) -> int | _Marker:
    value = int(text)
    if _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        return value
    shown = text if len(text) <= 24 else f"{text[:20]}..."
    return _Marker(shown, "is out of range (integers must fit in 64 bits)")


def check_body_size(length: int | None) -> None:
    """Refuse a body of ``length`` bytes over :data:`MAX_REQUEST_BYTES` (``None``: unknown).

    Raises
    ------
    TooLarge
        When the body is over the limit.
    """
    if length is not None and length > MAX_REQUEST_BYTES:
        raise TooLarge(
            f"request body of {length / 2**20:.1f} MiB is over the backend's limit of "
            f"{MAX_REQUEST_BYTES // 2**20} MiB: send fewer tasks per request (in Label "
            "Studio's Data Manager, select fewer tasks before retrieving predictions)"
        )


def parse_body(raw: bytes) -> Any:
    """The JSON value of a request body, refusing non-finite and out-of-range numbers.

    Parameters
    ----------
    raw
        The body as received; an empty body reads as ``None``.

    Returns
    -------
    Any
        The parsed value.

    Raises
    ------
    BadRequest
        When the body is not JSON, or holds ``NaN``, ``Infinity``, ``-Infinity``, a float that
        overflows, or an integer beyond 64 bits; the message names where (for example
        ``tasks[0].data.activations[3].heat_x (task id 7)``).
    """
    try:
        return json.loads(
            raw or b"null",
            parse_constant=_strict_constant,
            parse_float=_strict_float,
            parse_int=_strict_int,
        )
    except _Refused:
        raise BadRequest(_where_refused(raw)) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"request body is not JSON: {error}") from None


def _where_refused(raw: bytes) -> str:
    """The message for a body the strict parse refused: its first bad number and where."""
    body = json.loads(
        raw,
        parse_constant=lambda text: _Marker(text, "is not a finite number"),
        parse_float=_marking_float,
        parse_int=_marking_int,
    )
    path, marker = next(_markers(body, ()))
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    owner = _owner(body, path)
    return (
        f"{where or 'request body'}{owner}: {marker.text} {marker.why}; "
        "numbers in a request must be finite (NaN and Infinity are not JSON)"
    )


def _markers(value: Any, path: tuple) -> Iterator[tuple[tuple, _Marker]]:
    """Every refused number in ``value``, in document order, with its path."""
    if isinstance(value, _Marker):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _markers(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _markers(item, (*path, index))


def _owner(body: Any, path: tuple) -> str:
    """`` (task id 7)``: the objects on ``path`` that have an ``id``, named by their key."""
    found, node, name = [], body, ""
    for step in path[:-1]:
        node = node[step]
        name = step if isinstance(step, str) else name.removesuffix("s")
        if isinstance(node, dict) and isinstance(node.get("id"), int | str):
            found.append(f"{name} id {node['id']}")
    return f" ({', '.join(found)})" if found else ""


_MAP_NUMBERS = (HEAT_X, HEAT_Y)


def check_map_numbers(data: Any, where: str) -> None:
    """Refuse map numbers sent as strings that read as non-finite (``"NaN"``, ``"inf"``).

    The strict parse keeps non-finite numbers out, but the naming code reads a map's heat
    centre and descriptors with ``float()``, which also accepts such strings.

    Parameters
    ----------
    data
        A task's data (its maps: :func:`label_config.tasks.map_entries`).
    where
        How the message names the task, e.g. ``"tasks[0] (id 7)"``.

    Raises
    ------
    BadRequest
        Naming the task, the map's index and the field.
    """
    try:
        labelled = map_entries(data)
    except (ValueError, KeyError):
        return  # malformed: the naming code's own check names it
    for label, entry in labelled:
        if not isinstance(entry, Mapping):
            continue
        fields = [(name, entry.get(name)) for name in _MAP_NUMBERS]
        descriptors = entry.get(DESCRIPTORS_KEY)
        if isinstance(descriptors, Mapping):
            fields += [(f"{DESCRIPTORS_KEY}.{k}", v) for k, v in descriptors.items()]
        for name, value in fields:
            if isinstance(value, str) and not _finite_text(value):
                raise BadRequest(
                    f"{where}: {label}.{name} is {value!r}, not a finite number; "
                    "re-publish the task (xnaming publish) from its bundle"
                )


def _finite_text(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return True  # not a number at all: the naming code's own check names it


def check_predict_bounds(body: Any) -> None:
    """Refuse a ``/predict`` body over the map limits, or with non-finite map numbers.

    Malformed parts are left to :meth:`ls_backend.backend.service.Backend.predict`'s own checks.

    Raises
    ------
    TooLarge
        A task with more than :data:`MAX_BOARD_MAPS` maps, or tasks with more than
        :data:`MAX_REQUEST_MAPS` in all.
    BadRequest
        A map number sent as a non-finite string (:func:`check_map_numbers`).
    """
    tasks = body.get("tasks") if isinstance(body, Mapping) else None
    if not isinstance(tasks, list):
        return
    total = 0
    for index, task in enumerate(tasks):
        data = task.get("data") if isinstance(task, Mapping) else None
        where = f"tasks[{index}] (id {task.get('id')})" if isinstance(task, Mapping) else ""
        maps = data.get(MAPS) if isinstance(data, Mapping) else None
        count = len(maps) if isinstance(maps, list) else 1
        if count > MAX_BOARD_MAPS:
            raise TooLarge(
                f"{where}: a board of {count:,} maps; the backend proposes for boards of at "
                f"most {MAX_BOARD_MAPS:,} maps (the board is shown without a proposal). "
                "Publish a category this big in per-map mode (xnaming publish --mode per-map)"
            )
        total += max(count, 1)  # an empty task still costs a look-up
        check_map_numbers(data, where)
    if total > MAX_REQUEST_MAPS:
        raise TooLarge(
            f"this request holds {total:,} maps in {len(tasks):,} tasks; the backend answers "
            f"at most {MAX_REQUEST_MAPS:,} maps per request: retrieve predictions for fewer "
            "tasks at a time (select fewer in Label Studio's Data Manager)"
        )


def check_webhook_bounds(body: Any) -> None:
    """Refuse a ``/webhook`` event whose task holds non-finite map numbers.

    A webhook's size is bounded by :data:`MAX_REQUEST_BYTES` only: what an annotator did on a
    board bigger than :data:`MAX_BOARD_MAPS` is still learnt (in the background, in linear
    time), though no proposal is made for such a board.

    Raises
    ------
    BadRequest
        A map number sent as a non-finite string (:func:`check_map_numbers`).
    """
    task = body.get("task") if isinstance(body, Mapping) else None
    if isinstance(task, Mapping):
        check_map_numbers(task.get("data"), f"task (id {task.get('id')})")
