"""publish checks what it can before Label Studio is asked anything, and loses no password.

Offline: a bundle outside the files root, a changed ``activations.csv`` (its sha256 differs from
the manifest's) and a map path that leaves the bundle stop publish before the manager's client
is even made. Live: when Label Studio refuses a step anyway, the error names the step and the
refused field, and the new annotator's password is already in the 0600 record.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ls_backend.manager.client
from ls_backend.manager.projects import ProjectBook
from ls_backend.manager.publish import publish
from tests.ls_backend.bundle_factory import make_bundle
from xnn_training.bundle.io import BundleError
from xnn_training.files import sha256


class _Reached(Exception):
    """Raised by the stand-in Manager: publish got as far as talking to Label Studio."""


@pytest.fixture
def no_label_studio(monkeypatch):
    reached = []

    def manager(*args, **kwargs):
        reached.append(args)
        raise _Reached

    monkeypatch.setattr(ls_backend.manager.client, "Manager", manager)
    return reached


def _publish(bundle: Path, files_root: Path) -> None:
    publish(bundle, ["a@example.org"], url="http://127.0.0.1:9", token="t",
            files_root=files_root, progress=lambda line: None)  # fmt: skip


def _rewrite_activations(bundle: Path, change, *, keep_checksum: bool) -> None:
    path = bundle / "activations.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(table)
    table.to_csv(path, index=False)
    if keep_checksum:  # the manifest agrees, as if the bundle had been made so
        manifest = json.loads((bundle / "manifest.json").read_text())
        manifest["files"]["activations.csv"] = sha256(path)
        (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_a_good_bundle_reaches_label_studio(tmp_path, no_label_studio) -> None:
    bundle = make_bundle(tmp_path / "files" / "bundle")
    with pytest.raises(_Reached):
        _publish(bundle, tmp_path / "files")


def test_a_bundle_outside_the_files_root_stops_before_label_studio(tmp_path, no_label_studio):
    bundle = make_bundle(tmp_path / "elsewhere" / "bundle")
    (tmp_path / "files").mkdir()
    with pytest.raises(ValueError, match="not under Label Studio's files root"):
        _publish(bundle, tmp_path / "files")
    assert not no_label_studio


def test_a_changed_activations_table_stops_before_label_studio(tmp_path, no_label_studio):
    bundle = make_bundle(tmp_path / "bundle")

    def rename(table: pd.DataFrame) -> None:
        table.loc[0, "category"] = "ostrich"

    _rewrite_activations(bundle, rename, keep_checksum=False)
    with pytest.raises(BundleError, match=r"activations\.csv differs from its sha256"):
        _publish(bundle, tmp_path)
    assert not no_label_studio


@pytest.mark.parametrize("column", ["map_path", "overlay_path", "image_path"])
def test_a_path_out_of_the_bundle_stops_before_label_studio(tmp_path, no_label_studio, column):
    bundle = make_bundle(tmp_path / "bundle")
    outside = tmp_path / "outside.npz"  # a readable file, so only the path gives it away
    np.savez(outside, map=np.ones((4, 4), dtype=np.float32))
    first = pd.read_csv(bundle / "activations.csv", dtype=str)["activation_id"][0]

    def point_out(table: pd.DataFrame) -> None:
        table.loc[0, column] = "../outside.npz"

    _rewrite_activations(bundle, point_out, keep_checksum=True)
    with pytest.raises(BundleError, match=f"{first}: {column} points outside the bundle"):
        _publish(bundle, tmp_path)
    assert not no_label_studio


@pytest.mark.slow
@pytest.mark.server
def test_a_refused_step_names_the_field_and_the_password_is_kept(label_studio, tmp_path):
    from label_studio_sdk.core.api_error import ApiError

    from ls_backend.server import login_session

    # Under the files root that publish is told, not under the one Label Studio serves.
    bundle = make_bundle(tmp_path / "bundle")
    book = ProjectBook.in_data_dir(tmp_path / "manager")
    email = "refused-storage@example.org"
    with pytest.raises(ApiError) as caught:
        publish(bundle, [email], url=label_studio.url, token=label_studio.token,
                files_root=tmp_path, book=book, progress=lambda line: None)  # fmt: skip
    detail = caught.value.body["detail"]
    assert detail.startswith("adding the bundle's local files storage to project"), detail
    # Label Studio names no field for this one; its validation errors are said in full.
    assert "Validation error (non_field_errors: Absolute local path" in detail
    password = ProjectBook.in_data_dir(tmp_path / "manager").passwords(label_studio.url)[email]
    assert login_session(label_studio.url, email, password)
    assert (tmp_path / "manager" / "projects.json").stat().st_mode & 0o777 == 0o600
