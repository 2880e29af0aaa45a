"""The Debian commands some tests need (chromium, docker-compose), found or explained.

``make test`` installs them when it can (``.ci/system-packages``). Without them their tests are
skipped with one line saying how to install; under ``CI=true`` they fail instead, so CI never
passes without running them.
"""

from __future__ import annotations

import os
import shutil

import pytest

CI_VALUES = ("1", "true", "yes")


def in_ci() -> bool:
    """Whether the tests run under CI (``CI=true``), where nothing may be skipped for a tool."""
    return os.environ.get("CI", "").strip().lower() in CI_VALUES


def require_command(name: str, *, needed_for: str) -> str:
    """The path of Debian's command ``name`` (package of the same name), or skip / fail.

    Parameters
    ----------
    name
        The command, e.g. ``"chromium"``.
    needed_for
        What the test does with it, for the message.
    """
    path = shutil.which(name)
    if path is not None:
        return path
    message = (
        f"Debian's {name} is not installed, needed for {needed_for}: install it with "
        f"`sudo apt-get install {name}` (`make test` does it when run as root)"
    )
    if in_ci():
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)
