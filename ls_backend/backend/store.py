"""The ML backend's memory: every annotator's namings, in SQLite, keyed by annotation id.

Writing an annotation replaces all rows of that annotation id in one transaction, so a replayed
webhook changes nothing and a crash never leaves half an annotation. A project can be replaced
wholesale from a Label Studio export (start-up resync, START_TRAINING). Each row keeps the map's
embedding (float32 bytes), its embedding space and how many of its columns say where the hot
spot lies, so the annotator model is refitted from the store alone after a restart.
:meth:`NamingStore.version` counts the writes that touch an annotator, so a model fitted on
their namings knows when it is stale.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ls_backend.backend.naming import MapInfo, Naming

__all__ = ["NamingStore", "StoredRow"]

StoredRow = tuple[int, int, str, Naming]
"""(annotation id, project id, annotator, naming)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS namings (
    annotation_id INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    annotator TEXT NOT NULL,
    activation_id TEXT NOT NULL,
    category TEXT NOT NULL,
    x_feature INTEGER NOT NULL,
    heat_x REAL,
    heat_y REAL,
    concept TEXT NOT NULL,
    status TEXT NOT NULL,
    descriptors TEXT,
    embedding BLOB,
    space TEXT,
    where_columns INTEGER,
    PRIMARY KEY (annotation_id, activation_id)
);
CREATE INDEX IF NOT EXISTS namings_annotator ON namings (annotator, category, x_feature);
CREATE TABLE IF NOT EXISTS projects (project_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS annotations (
    annotation_id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    task_id INTEGER
);
"""


class NamingStore:
    """Thread-safe SQLite store of namings.

    Parameters
    ----------
    path
        The SQLite file; created with its directory when missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(namings)")}
        # A store written by an older backend lacks the newer columns.
        newer = {
            "descriptors": "TEXT",
            "embedding": "BLOB",
            "space": "TEXT",
            "where_columns": "INTEGER",
        }
        for name, kind in newer.items():
            if name not in columns:
                self._db.execute(f"ALTER TABLE namings ADD COLUMN {name} {kind}")
        self._versions: Counter[str] = Counter()
        self._generation = 0  # bumped by writes whose annotators are not known

    def version(self, annotator: str) -> tuple[int, int]:
        """Changes with every write that may touch ``annotator``'s namings (in this process)."""
        with self._lock:
            return (self._generation, self._versions[annotator])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, statements: Iterable[tuple[str, tuple]], annotator: str | None = None) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            if annotator is None:
                self._generation += 1
            else:
                self._versions[annotator] += 1

    @staticmethod
    def _insert(annotation_id: int, project_id: int, annotator: str, n: Naming) -> tuple:
        heat = n.map.heat or (None, None)
        looks = None if n.map.descriptors is None else json.dumps(n.map.descriptors)
        embedding = None
        if n.map.embedding is not None:
            embedding = np.asarray(n.map.embedding, dtype="<f4").tobytes()
        return (
            "INSERT OR REPLACE INTO namings (annotation_id, project_id, annotator, activation_id,"
            " category, x_feature, heat_x, heat_y, concept, status, descriptors, embedding, space,"
            " where_columns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                annotation_id,
                project_id,
                annotator,
                n.map.activation_id,
                n.map.category,
                n.map.x_feature,
                heat[0],
                heat[1],
                n.concept,
                n.status,
                looks,
                embedding,
                n.map.space if embedding is not None else None,
                n.map.where if embedding is not None else None,
            ),
        )

    def put_annotation(
        self,
        annotation_id: int,
        project_id: int,
        annotator: str,
        namings: Iterable[Naming],
        *,
        task_id: int | None = None,
    ) -> None:
        """Store (or replace) everything annotation ``annotation_id`` (of ``task_id``) says."""
        with self._lock:
            before = self._db.execute(
                "SELECT DISTINCT annotator FROM namings WHERE annotation_id = ?", (annotation_id,)
            ).fetchall()
        statements = [("DELETE FROM namings WHERE annotation_id = ?", (annotation_id,))]
        statements.append(("INSERT OR IGNORE INTO projects VALUES (?)", (project_id,)))
        statements += [self._insert(annotation_id, project_id, annotator, n) for n in namings]
        statements.append(
            (
                "INSERT OR REPLACE INTO annotations VALUES (?, ?, ?)",
                (annotation_id, project_id, task_id),
            )
        )
        # The same annotation id under another annotator (never in practice): a full bump.
        same = all(row[0] == annotator for row in before)
        self._write(statements, annotator if same else None)

    def delete_annotations(self, annotation_ids: Iterable[int]) -> set[str]:
        """Forget these annotations; returns the annotators whose namings they held."""
        ids = [int(a) for a in annotation_ids]
        statements = []
        for a in ids:
            statements.append(("DELETE FROM namings WHERE annotation_id = ?", (a,)))
            statements.append(("DELETE FROM annotations WHERE annotation_id = ?", (a,)))
        with self._lock:
            sql = "SELECT DISTINCT annotator FROM namings WHERE annotation_id = ?"
            owners = {r[0] for a in ids for r in self._db.execute(sql, (a,))}
        self._write(statements)
        return owners

    def annotators(self, project_id: int | None = None) -> set[str]:
        """Every annotator with namings in the store (in ``project_id``, when given)."""
        sql, args = "SELECT DISTINCT annotator FROM namings", ()
        if project_id is not None:
            sql, args = sql + " WHERE project_id = ?", (project_id,)
        with self._lock:
            return {r[0] for r in self._db.execute(sql, args)}

    def annotated_tasks(self, project_id: int) -> set[int]:
        """The tasks of ``project_id`` with an annotation the store holds."""
        sql = "SELECT task_id FROM annotations WHERE project_id = ? AND task_id IS NOT NULL"
        with self._lock:
            return {r[0] for r in self._db.execute(sql, (project_id,))}

    def replace_project(
        self,
        project_id: int,
        rows: Iterable[StoredRow],
        *,
        annotated: Iterable[tuple[int, int | None]] = (),
    ) -> None:
        """Make the store's rows of ``project_id`` exactly ``rows`` (from an export);
        ``annotated``: its (annotation id, task id) pairs."""
        statements = [("DELETE FROM namings WHERE project_id = ?", (project_id,))]
        statements.append(("DELETE FROM annotations WHERE project_id = ?", (project_id,)))
        statements += [
            ("INSERT OR REPLACE INTO annotations VALUES (?, ?, ?)", (a, project_id, t))
            for a, t in annotated
        ]
        statements.append(("INSERT OR IGNORE INTO projects VALUES (?)", (project_id,)))
        statements += [self._insert(a, p, who, n) for a, p, who, n in rows]
        self._write(statements)

    def remember_project(self, project_id: int) -> None:
        self._write([("INSERT OR IGNORE INTO projects VALUES (?)", (project_id,))])

    def projects(self) -> list[int]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT project_id FROM projects")]

    def namings_of(self, annotator: str, category: str | None = None) -> list[Naming]:
        """This annotator's namings (of one category, when given)."""
        sql = "SELECT activation_id, category, x_feature, heat_x, heat_y, descriptors, concept, "
        sql += "status, embedding, space, where_columns "
        sql += "FROM namings WHERE annotator = ?"
        args: tuple = (annotator,)
        if category is not None:
            sql += " AND category = ?"
            args += (category,)
        sql += " ORDER BY annotation_id, activation_id"  # deterministic model fits
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [
            Naming(
                MapInfo(
                    aid,
                    cat,
                    int(xf),
                    None if hx is None else (hx, hy),
                    None if looks is None else tuple(json.loads(looks)),
                    None if blob is None else np.frombuffer(blob, dtype="<f4").astype(np.float32),
                    space,
                    where,
                ),
                concept,
                status,
            )
            for aid, cat, xf, hx, hy, looks, concept, status, blob, space, where in rows
        ]

    def annotation_ids(self) -> set[int]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT DISTINCT annotation_id FROM namings")}
