"""Bundle parts: one table part per process, merged in data set order; crash leftovers; the lock."""

from __future__ import annotations

import multiprocessing
import shutil

import pytest

from tests.xnn_training.bundle.test_bundle import IDENTITY, _explained
from xnn_training.bundle.io import PARTS, BundleError, BundleWriter, read_bundle

ORDER = [str(i) for i in range(8)]


def _single(root, ids=ORDER):
    writer = BundleWriter(root, IDENTITY)
    for image_id in ids:
        writer.add(_explained(image_id, int(image_id) % 3))
    writer.finish()
    return root


def _text(root, name):
    return (root / name).read_bytes()


def test_parts_merge_into_the_tables_a_single_writer_writes(tmp_path):
    root = tmp_path / "b"
    main = BundleWriter(root, IDENTITY)
    parts = [BundleWriter(root, IDENTITY, part=f"rank-{r}") for r in range(3)]
    for batch, start in enumerate(range(0, 8, 2)):  # batches of 2, round robin
        for image_id in ORDER[start : start + 2]:
            parts[batch % 3].add(_explained(image_id, int(image_id) % 3))
    assert not (root / "activations.csv").exists()  # each part writes its own tables
    assert (root / PARTS / "rank-0" / "activations.csv").is_file()
    assert main.merge(ORDER) == frozenset(ORDER)
    main.finish()
    single = _single(tmp_path / "single")
    for name in ("activations.csv", "images.csv"):
        assert _text(root, name) == _text(single, name)
    assert not (root / PARTS).exists()
    assert not (root / ".lock").exists()
    assert read_bundle(root).manifest["files"] == read_bundle(single).manifest["files"]


def test_without_an_order_the_bundle_rows_come_first_then_the_parts_by_name(tmp_path):
    root = tmp_path / "b"
    main = BundleWriter(root, IDENTITY)
    main.add(_explained("5", 1))
    BundleWriter(root, IDENTITY, part="b").add(_explained("1", 1))
    BundleWriter(root, IDENTITY, part="a").add(_explained("9", 1))
    main.finish()
    assert read_bundle(root).images["image_id"].tolist() == ["5", "9", "1"]


def test_what_a_killed_process_left_is_dropped_and_redone(tmp_path):
    root = tmp_path / "b"
    main = BundleWriter(root, IDENTITY)
    part = BundleWriter(root, IDENTITY, part="rank-1")
    part.add(_explained("0", 2))
    part.add(_explained("1", 1))
    tables = root / PARTS / "rank-1"
    # Killed while writing image 2: its activation row complete, its images.csv row cut short.
    with (tables / "activations.csv").open("a", newline="") as file:
        file.write("2:x0,2,c1,0,1.0,1.0,1,maps/2/x0.npz,overlays/2/x0.png,images/2.png\r\n")
    with (tables / "images.csv").open("a", newline="") as file:
        file.write("2,c1,c1,c1,3.5,1,ima")
    main.close()

    reopened = BundleWriter(root, IDENTITY)  # the next run merges what is finished
    assert reopened.done == {"0", "1"}
    assert not (root / PARTS).exists()
    reopened.add(_explained("2", 1))
    reopened.finish()
    bundle = read_bundle(root)
    assert bundle.images["image_id"].tolist() == ["0", "1", "2"]
    assert bundle.activations["activation_id"].tolist() == ["0:x0", "0:x1", "1:x0", "2:x0"]


@pytest.mark.parametrize("stopped_after", ["activations.csv", "images.csv"])
def test_a_merge_stopped_halfway_then_repeated_loses_and_repeats_nothing(tmp_path, stopped_after):
    root = tmp_path / "b"
    main = BundleWriter(root, IDENTITY)
    main.add(_explained("0", 1))
    part = BundleWriter(root, IDENTITY, part="rank-1")
    part.add(_explained("1", 2))
    part.add(_explained("2", 1))
    before = {"parts": tmp_path / "parts", "images.csv": tmp_path / "images.csv"}
    shutil.copytree(root / PARTS, before["parts"])
    shutil.copy(root / "images.csv", before["images.csv"])
    main.merge(ORDER)
    merged = {name: _text(root, name) for name in ("activations.csv", "images.csv")}
    # What a merge killed right after replacing ``stopped_after`` leaves behind:
    shutil.copytree(before["parts"], root / PARTS)  # the parts, not deleted yet
    if stopped_after == "activations.csv":
        shutil.copy(before["images.csv"], root / "images.csv")  # images.csv not replaced yet
    assert main.merge(ORDER) == frozenset({"0", "1", "2"})
    for name, text in merged.items():
        assert _text(root, name) == text
    main.finish()
    ids = read_bundle(root).activations["activation_id"].tolist()
    assert ids == ["0:x0", "1:x0", "1:x1", "2:x0"]


def test_part_writers_are_refused_where_they_would_mix_rows(tmp_path):
    root = tmp_path / "b"
    with pytest.raises(BundleError, match="main writer must open the bundle"):
        BundleWriter(root, IDENTITY, part="rank-0")
    main = BundleWriter(root, IDENTITY)
    BundleWriter(root, IDENTITY, part="rank-0")
    with pytest.raises(BundleError, match="already exists"):
        BundleWriter(root, IDENTITY, part="rank-0")  # two processes on one part
    with pytest.raises(BundleError, match=r"threshold: bundle has 0.9, this run 0.5"):
        BundleWriter(root, {**IDENTITY, "threshold": 0.5}, part="rank-1")
    with pytest.raises(ValueError, match="part"):
        BundleWriter(root, IDENTITY, part="../rank-2")
    part = BundleWriter(root, IDENTITY, part="rank-3")
    with pytest.raises(BundleError, match="only the bundle's main writer"):
        part.finish()
    with pytest.raises(BundleError, match="only the bundle's main writer"):
        part.merge()
    main.close()


def _open_elsewhere(root, queue):
    try:
        BundleWriter(root, IDENTITY).close()
        queue.put("opened")
    except BundleError as error:
        queue.put(str(error))


def _in_another_process(root) -> str:
    context = multiprocessing.get_context("fork")  # no fresh interpreter: fast
    queue = context.Queue()
    process = context.Process(target=_open_elsewhere, args=(root, queue))
    process.start()
    process.join(30)
    return queue.get(timeout=5)


def test_a_second_run_on_a_bundle_being_written_is_refused(tmp_path):
    root = tmp_path / "b"
    writer = BundleWriter(root, IDENTITY)
    writer.add(_explained("0", 1))
    assert "being written by another xnaming explain" in _in_another_process(root)
    writer.close()  # an interrupted run releases the lock
    assert _in_another_process(root) == "opened"
    writer = BundleWriter(root, IDENTITY)
    writer.finish()
    assert len(read_bundle(root).images) == 1
    assert not (root / ".lock").exists()
