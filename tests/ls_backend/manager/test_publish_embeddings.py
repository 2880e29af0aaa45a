"""publish and the bundle's map embeddings: a bundle without them publishes with one warning; a
bad embeddings file stops publish before anything is created in Label Studio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ls_backend.manager.client
from ls_backend.manager.publish import project_title, publish
from tests.ls_backend.bundle_factory import make_bundle
from xnaming.cli import main
from xnaming.errors import BAD_INPUT
from xnn_training.bundle.embeddings import (
    EMBEDDINGS_FILE,
    EmbeddingError,
    bundle_fingerprint,
    read_embeddings,
)


def _truncate(bundle: Path) -> str:
    content = (bundle / EMBEDDINGS_FILE).read_bytes()
    (bundle / EMBEDDINGS_FILE).write_bytes(content[: len(content) // 2])
    return "truncated or damaged"


def _rewrite(bundle: Path, **changed) -> None:
    with np.load(bundle / EMBEDDINGS_FILE) as arrays:
        content = {**dict(arrays), **changed}
    with (bundle / EMBEDDINGS_FILE).open("wb") as file:
        np.savez_compressed(file, **content)


def _from_another_bundle(bundle: Path) -> str:
    # What the same images explained with another threshold would have: same ids, other maps.
    manifest = json.loads((bundle / "manifest.json").read_text())
    _rewrite(bundle, fingerprint=np.asarray(bundle_fingerprint({**manifest, "threshold": 0.8})))
    return "another bundle"


def _other_ids(bundle: Path) -> str:
    with np.load(bundle / EMBEDDINGS_FILE) as arrays:
        ids = arrays["activation_id"]
    _rewrite(bundle, activation_id=ids[::-1].copy())
    return "does not match activations.csv"


BREAKS = {"truncated": _truncate, "another bundle": _from_another_bundle, "ids": _other_ids}


class _Reached(Exception):
    """Raised by the stand-in Manager: publish got as far as talking to Label Studio."""


@pytest.fixture
def no_label_studio(monkeypatch):
    """publish's Manager replaced by one that records that it was reached, then stops."""
    reached = []

    def manager(*args, **kwargs):
        reached.append(args)
        raise _Reached

    monkeypatch.setattr(ls_backend.manager.client, "Manager", manager)
    return reached


def _publish(bundle: Path, lines: list[str]) -> None:
    publish(bundle, ["a@example.org"], url="http://127.0.0.1:9", token="t",
            files_root=bundle.parent, progress=lines.append)  # fmt: skip


@pytest.mark.parametrize("name", BREAKS)
def test_a_bad_embeddings_file_stops_publish_before_label_studio(tmp_path, no_label_studio, name):
    bundle = make_bundle(tmp_path / "bundle", embeddings=True)
    expected = BREAKS[name](bundle)
    lines: list[str] = []
    with pytest.raises(EmbeddingError) as caught:
        _publish(bundle, lines)
    message = str(caught.value)
    assert str(bundle / EMBEDDINGS_FILE) in message
    assert expected in message
    assert "re-run `xnaming explain`" in message
    assert not no_label_studio  # nothing was asked of Label Studio
    assert not lines


def test_a_bundle_without_embeddings_publishes_with_one_warning(tmp_path, no_label_studio):
    bundle = make_bundle(tmp_path / "bundle")
    assert read_embeddings(bundle) is None
    lines: list[str] = []
    with pytest.raises(_Reached):
        _publish(bundle, lines)
    assert no_label_studio  # it went on
    (warning,) = lines
    assert warning.startswith("warning: ")
    assert str(bundle) in warning
    assert "re-run `xnaming explain`" in warning


def test_a_bundle_with_embeddings_publishes_without_warning(tmp_path, no_label_studio):
    bundle = make_bundle(tmp_path / "bundle", embeddings=True)
    lines: list[str] = []
    with pytest.raises(_Reached):
        _publish(bundle, lines)
    assert no_label_studio
    assert not lines


@pytest.mark.slow
@pytest.mark.server
def test_live_a_bad_embeddings_file_publishes_nothing(label_studio, tmp_path, capsys):
    from ls_backend.manager.client import Manager

    common = ["--data-dir", str(label_studio.data_dir)]
    manager = Manager(label_studio.url, label_studio.token)
    for name, breaks in BREAKS.items():
        bundle = make_bundle(label_studio.files_root / f"embedded-{name}", embeddings=True)
        expected = breaks(bundle)
        email = f"embeddings-{name.replace(' ', '-')}@example.org"
        before = [p["id"] for _, p in manager.projects()]
        capsys.readouterr()
        assert main(["publish", str(bundle), "--annotators", email, *common]) == BAD_INPUT
        err = capsys.readouterr().err
        assert str(bundle / EMBEDDINGS_FILE) in err
        assert expected in err
        assert "re-run `xnaming explain`" in err
        assert [p["id"] for _, p in manager.projects()] == before  # no project
        assert email not in {a.email for a in manager.annotators()}  # no account
        assert not [p for p in label_studio.projects() if p.title == project_title(email, "board")]

    # The same bundle, repaired, publishes without a warning; the old one with one.
    good = make_bundle(label_studio.files_root / "embedded-good", embeddings=True)
    assert main(["publish", str(good), "--annotators", "embeddings-ok@example.org", *common]) == 0
    assert "warning" not in capsys.readouterr().out
    old = str(label_studio.bundle)
    assert main(["publish", old, "--annotators", "embeddings-old@example.org", *common]) == 0
    out = capsys.readouterr().out
    assert out.count("warning: ") == 1
    assert "no map embeddings" in out
    assert [p for p in label_studio.projects() if p.title.endswith("embeddings-old@example.org")]
