"""The command line: one entry point, ten sub-commands, documented exit statuses."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from xnaming.cli import COMMANDS, main
from xnaming.errors import EXIT_STATUSES

PIPELINE_ORDER = [
    "data",
    "train",
    "evaluate",
    "explain",
    "why",
    "ls",
    "publish",
    "collect",
    "status",
    "analyze",
    "simulate",
    "discover",
    "demo",
]


def test_commands_are_the_pipeline_in_order():
    assert [command.name for command in COMMANDS] == PIPELINE_ORDER


def test_help_lists_every_command_on_one_line(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    for command in COMMANDS:
        matching = [line for line in lines if re.match(rf"^\s+{command.name}\s{{2,}}\S", line)]
        assert len(matching) == 1, f"{command.name!r} has no one-line entry in --help"
        assert matching[0].rstrip().endswith(command.summary)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"xnaming {version('xnaming')}"


def test_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit statuses:" in out
    for code, meaning in EXIT_STATUSES.items():
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning)}$", out, re.MULTILINE), code
    assert "--debug" in out


def test_built_commands_refuse_unknown_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--no-such-option"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_built_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command.name, "--help"])
    assert exit_info.value.code == 0
    assert command.summary in capsys.readouterr().out


def test_installed_console_script_runs():
    script = Path(sys.executable).with_name("xnaming")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("xnaming ")


def test_help_imports_nothing_heavy():
    # `xnaming --help` must stay instant: no torch, no Label Studio at import time.
    code = (
        "import sys; from xnaming.cli import build_parser; build_parser(); "
        "heavy = [m for m in ('torch', 'label_studio', 'label_studio_sdk', 'matplotlib', 'pandas') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
