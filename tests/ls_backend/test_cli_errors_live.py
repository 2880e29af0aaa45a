"""The error boundary against the real Label Studio: a wrong token is refused in one line."""

from __future__ import annotations

import pytest

from xnaming.cli import main
from xnaming.errors import REFUSED

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
