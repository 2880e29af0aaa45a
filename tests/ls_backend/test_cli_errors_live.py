"""The error boundary against the real Label Studio: a wrong token is refused in one line."""

from __future__ import annotations

import pytest

from xnaming.cli import main
from xnaming.errors import BAD_INPUT, REFUSED, UNREACHABLE

pytestmark = [pytest.mark.slow, pytest.mark.server]


def test_a_wrong_token_is_refused_in_one_line(label_studio, tmp_path, capsys):
    out = tmp_path / "namings.csv"
    args = ["collect", "--url", label_studio.url, "--token", "not-a-token", "--out", str(out)]
    assert main(args) == REFUSED
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("xnaming collect: error: Label Studio refused the request (401")
    assert "--token" in err
    assert not out.exists()


def test_an_explicit_token_wins_over_the_stored_one(label_studio, tmp_path, capsys, monkeypatch):
    """A wrong --token beside a --data-dir that holds a good one: refused, not silently ignored."""
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    out = tmp_path / "namings.csv"
    common = ["--data-dir", str(label_studio.data_dir), "--out", str(out)]
    assert main(["collect", *common, "--token", "not-a-token"]) == REFUSED
    assert "Label Studio refused the request (401" in capsys.readouterr().err
    assert not out.exists()


def test_an_explicit_url_wins_over_the_stored_one(label_studio, capsys, monkeypatch):
    """status against a dead port fails; it does not report the stored server."""
    from ls_backend.server import free_port

    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    dead = f"http://127.0.0.1:{free_port()}"
    common = ["--data-dir", str(label_studio.data_dir), "--url", dead]
    assert main(["status", *common, "--token", label_studio.token]) == UNREACHABLE
    assert dead in capsys.readouterr().err
    # Without --token the stored one is not sent to another server.
    assert main(["status", *common]) == BAD_INPUT
    err = capsys.readouterr().err
    assert "give --token" in err
    assert label_studio.token not in err
