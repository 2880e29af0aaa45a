"""The backend's SQLite memory: replays, descriptors, embeddings, and stores written by older
versions."""

from __future__ import annotations

import sqlite3

import numpy as np

from ls_backend.backend.naming import DESCRIPTORS, MapInfo, Naming, part_columns, where_columns
from ls_backend.backend.store import NamingStore
from xnn_training.bundle.embeddings import GEOMETRY


def naming(aid: str, concept: str = "crown", looks: tuple | None = None) -> Naming:
    return Naming(MapInfo(aid, "jay", 2, (0.25, 0.5), looks), concept, "named")


def test_replayed_annotations_change_nothing_and_descriptors_survive(tmp_path) -> None:
    store = NamingStore(tmp_path / "namings.sqlite3")
    looks = tuple(float(i) / 10 for i in range(len(DESCRIPTORS)))
    first = [naming("a", looks=looks), naming("b")]
    store.put_annotation(1, 7, "ann@example.org", first)
    store.put_annotation(1, 7, "ann@example.org", first)
    assert sorted(store.namings_of("ann@example.org"), key=lambda n: n.map.activation_id) == first
    # A changed annotation replaces what it said before, and only that.
    store.put_annotation(1, 7, "ann@example.org", [naming("a", "cap", looks)])
    assert store.namings_of("ann@example.org") == [naming("a", "cap", looks)]
    assert store.namings_of("ann@example.org", category="finch") == []
    store.close()


def test_a_store_from_before_descriptors_is_upgraded_in_place(tmp_path) -> None:
    path = tmp_path / "namings.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE namings (annotation_id INTEGER NOT NULL, project_id INTEGER NOT NULL,
            annotator TEXT NOT NULL, activation_id TEXT NOT NULL, category TEXT NOT NULL,
            x_feature INTEGER NOT NULL, heat_x REAL, heat_y REAL, concept TEXT NOT NULL,
            status TEXT NOT NULL, PRIMARY KEY (annotation_id, activation_id));
        INSERT INTO namings VALUES (1, 7, 'ann', 'a', 'jay', 2, 0.25, 0.5, 'crown', 'named');
        """
    )
    old.commit()
    old.close()
    store = NamingStore(path)
    assert store.namings_of("ann") == [naming("a")]
    store.put_annotation(2, 7, "ann", [naming("b", looks=(1.0,) * len(DESCRIPTORS))])
    assert {n.map.activation_id: n.map.descriptors for n in store.namings_of("ann")} == {
        "a": None,
        "b": (1.0,) * len(DESCRIPTORS),
    }
    store.close()


def test_embeddings_keep_their_space_and_where_columns(tmp_path) -> None:
    """What the namer reads of a map (its trailing where columns) survives a restart."""
    path = tmp_path / "namings.sqlite3"
    embedding = np.arange(30, dtype=np.float32)
    seen = MapInfo("a", "jay", 2, (0.25, 0.5), None, embedding, "space-1", 19)
    old = MapInfo("b", "jay", 2, (0.25, 0.5), None, embedding[:20], "space-0", None)
    store = NamingStore(path)
    store.put_annotation(1, 7, "ann", [Naming(seen, "crown", "named"), Naming(old, "", "unnamed")])
    store.close()
    again = {n.map.activation_id: n.map for n in NamingStore(path).namings_of("ann")}
    assert (again["a"].space, again["a"].where) == ("space-1", 19)
    np.testing.assert_array_equal(again["a"].embedding, embedding)
    assert (again["b"].space, again["b"].where) == ("space-0", None)
    assert where_columns([again["a"]]) == 19 + len(DESCRIPTORS)
    assert where_columns([again["b"]]) == len(GEOMETRY) + len(DESCRIPTORS)
    assert (part_columns([again["a"]]), part_columns([again["b"]])) == (19 - len(GEOMETRY), 0)
