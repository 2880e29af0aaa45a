"""The README's `make test` on a fresh machine: the Debian packages the tests need.

.ci/system-packages installs chromium and docker-compose when it can; when it cannot, it says in
one line how to and the tests that need them skip, except under CI=true, where both fail. Run
here with a PATH that hides the commands and with installing turned off (XNAMING_NO_APT=1),
so nothing is installed or removed on this machine.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.system_packages import require_command

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "system-packages"
NEEDED = ("chromium", "docker-compose")


@pytest.fixture
def path_without_them(tmp_path) -> str:
    """A PATH with every command of this one except chromium and docker-compose."""
    hidden = tmp_path / "bin"
    hidden.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not Path(folder).is_dir():
            continue
        for command in Path(folder).iterdir():
            target = hidden / command.name
            if command.name not in NEEDED and not target.exists():
                target.symlink_to(command)
    return str(hidden)


def _run(path: str, **env: str) -> subprocess.CompletedProcess:
    outside = {key: value for key, value in os.environ.items() if key != "CI"}
    environment = {**outside, "PATH": path, "XNAMING_NO_APT": "1", **env}
    return subprocess.run(
        [str(SCRIPT)], capture_output=True, text=True, check=False, env=environment, timeout=60
    )


def test_missing_packages_are_named_in_one_line_with_how_to_install(path_without_them):
    result = _run(path_without_them)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "chromium docker-compose not installed; their tests are skipped" in lines[0]
    assert "sudo apt-get install chromium docker-compose" in lines[0]


def test_under_ci_a_missing_package_fails(path_without_them):
    result = _run(path_without_them, CI="true")
    assert result.returncode == 1
    assert "CI=true needs chromium docker-compose" in result.stderr


def test_nothing_to_do_when_they_are_there():
    for command in NEEDED:
        require_command(command, needed_for="this check")  # skips where they are missing
    result = _run(os.environ["PATH"])
    assert result.returncode == 0
    assert result.stdout == result.stderr == ""


def test_tests_skip_without_them_and_fail_under_ci(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"sudo apt-get install chromium"):
        require_command("chromium", needed_for="the browser tests")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true: Debian's chromium"):
        require_command("chromium", needed_for="the browser tests")
