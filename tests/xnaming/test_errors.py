"""The one error boundary: each command's likeliest mistake gives one line and its exit status.

Real files and real missing servers (a free port nobody listens on); the found bugs (publish and
collect without credentials or server, simulate on a folder that is not a bundle) also run
through the installed console script, as a user types them.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ls_backend.server import free_port
from tests.ls_backend.bundle_factory import make_bundle
from xnaming.cli import main
from xnaming.errors import (
    BAD_INPUT,
    ERROR,
    EXIT_STATUSES,
    INTERRUPTED,
    NOT_FOUND,
    UNREACHABLE,
    classify,
)

SCRIPT = Path(sys.executable).with_name("xnaming")


def _one_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"xnaming {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=300
    )


@pytest.fixture
def nobody() -> str:
    """The URL of a port on 127.0.0.1 where no server listens."""
    return f"http://127.0.0.1:{free_port()}"


def test_data_check_of_a_missing_folder(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nowhere")]) == NOT_FOUND
    assert "is not a directory" in _one_line(capsys.readouterr().err, "data")


def test_train_xnn_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "dnn").mkdir()
    status = main(["train", "xnn", "--dnn", str(tmp_path / "dnn"), "--out", str(tmp_path / "x")])
    assert status == NOT_FOUND
    assert "a finished run of xnaming train" in _one_line(capsys.readouterr().err, "train")


def test_explain_with_runs_that_are_not_runs(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    runs = str(tmp_path / "runs")
    args = ["explain", "--dnn", runs, "--xnn", runs, "--data", runs, "--out", str(tmp_path / "b")]
    assert main(args) == NOT_FOUND
    assert "weights.safetensors is missing" in _one_line(capsys.readouterr().err, "explain")


def test_ls_start_on_a_port_in_use(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = ["ls", "start", "--data-dir", str(tmp_path / "ls"), "--port", port, "--no-backend"]
        assert main(args) == BAD_INPUT
    assert f"port {port} on 127.0.0.1 is in use" in _one_line(capsys.readouterr().err, "ls")


def test_ls_backend_on_a_port_in_use(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert main(["ls", "backend", "--port", port, "--state", str(tmp_path)]) == BAD_INPUT
    assert f"port {port} is in use" in _one_line(capsys.readouterr().err, "ls")


@pytest.mark.slow  # Label Studio's SDK or a fresh interpreter: seconds each
def test_publish_before_ls_start_has_made_credentials(tmp_path):
    bundle = make_bundle(tmp_path / "bundle")
    result = _run("publish", str(bundle), "--annotators", "a@lab.org", "--data-dir", "nowhere",
                  cwd=tmp_path)  # fmt: skip
    assert result.returncode == NOT_FOUND
    line = _one_line(result.stderr, "publish")
    assert "credentials.json not found: start Label Studio with `xnaming ls start" in line


@pytest.mark.slow  # Label Studio's SDK or a fresh interpreter: seconds each
def test_publish_to_a_server_that_is_not_running(tmp_path, nobody, capsys):
    bundle = make_bundle(tmp_path / "bundle")
    args = ["publish", str(bundle), "--annotators", "a@lab.org", "--url", nobody, "--token", "t",
            "--files-root", str(tmp_path), "--data-dir", str(tmp_path / "ls")]  # fmt: skip
    assert main(args) == UNREACHABLE
    line = _one_line(capsys.readouterr().err, "publish")
    assert f"no answer at {nobody}" in line
    assert "xnaming ls start" in line


@pytest.mark.slow  # Label Studio's SDK or a fresh interpreter: seconds each
def test_collect_from_a_server_that_is_not_running(tmp_path, nobody):
    result = _run("collect", "--url", nobody, "--token", "t", "--out", str(tmp_path / "n.csv"))
    assert result.returncode == UNREACHABLE
    assert f"no answer at {nobody}" in _one_line(result.stderr, "collect")


@pytest.mark.slow  # Label Studio's SDK or a fresh interpreter: seconds each
def test_collect_before_ls_start(tmp_path):
    result = _run("collect", "--out", "namings.csv", cwd=tmp_path)
    assert result.returncode == NOT_FOUND
    assert "credentials.json not found" in _one_line(result.stderr, "collect")


def test_analyze_with_a_missing_activations_file(tmp_path, capsys):
    args = ["analyze", "--activations", str(tmp_path / "activations.csv"),
            "--namings", str(tmp_path / "n.csv"), "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(args) == NOT_FOUND
    line = _one_line(capsys.readouterr().err, "analyze")
    assert f"{tmp_path / 'activations.csv'}: no such file or directory" in line


def test_simulate_on_a_folder_that_is_not_a_bundle(tmp_path):
    (tmp_path / "photos").mkdir()
    result = _run("simulate", str(tmp_path / "photos"), "--out", str(tmp_path / "n.csv"))
    assert result.returncode == BAD_INPUT
    line = _one_line(result.stderr, "simulate")
    assert "is not a map bundle: manifest.json is missing" in line
    assert not (tmp_path / "n.csv").exists()


def test_simulate_finds_the_data_set_from_the_bundle_not_the_working_directory(
    toybirds_bundle, tmp_path, monkeypatch, capsys
):
    import json

    _data, bundle, on_part, _ = toybirds_bundle
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["data"] = "../toybirds"  # as `xnaming explain` writes it: relative to the bundle
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["simulate", str(bundle), "--out", "n.csv", "--annotators", "2"]) == 0
    assert len((elsewhere / "n.csv").read_text().splitlines()) == 1 + 2 * len(on_part)


def test_demo_with_a_workdir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "work").write_text("not a folder")
    assert main(["demo", "--no-serve", "--workdir", str(tmp_path / "work")]) == NOT_FOUND
    assert "not a directory" in _one_line(capsys.readouterr().err, "demo")


@pytest.mark.slow  # Label Studio's SDK or a fresh interpreter: seconds each
def test_debug_shows_the_traceback_anywhere_on_the_line(tmp_path):
    (tmp_path / "photos").mkdir()
    for args in (["--debug", "simulate"], ["simulate", "--debug"]):
        result = _run(*args, str(tmp_path / "photos"), "--out", str(tmp_path / "n.csv"))
        assert result.returncode == BAD_INPUT
        assert result.stderr.startswith("Traceback (most recent call last):")
        assert result.stderr.strip().splitlines()[-1].startswith("xnaming simulate: error: ")


def test_usage_errors_keep_argparse_status(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["publish"])
    assert exit_info.value.code == 2
    assert "the following arguments are required" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (FileNotFoundError(2, "No such file or directory", "x.csv"), NOT_FOUND),
        (LookupError("no xnaming projects on http://ls: run `xnaming publish` first"), NOT_FOUND),
        (ValueError("bad\nvalue"), BAD_INPUT),
        (PermissionError(13, "Permission denied", "/root/x"), BAD_INPUT),
        (ConnectionRefusedError(111, "Connection refused"), UNREACHABLE),
        (TimeoutError("http://127.0.0.1:8080 did not answer within 240 s"), UNREACHABLE),
        (RuntimeError("label-studio init failed (1); see log"), ERROR),
        (KeyError("a bug"), ERROR),
        (KeyboardInterrupt(), INTERRUPTED),
    ],
)
def test_classify(error, status):
    got, message = classify(error)
    assert got == status
    assert status in EXIT_STATUSES
    assert "\n" not in message
    if isinstance(error, KeyError):
        assert message.startswith("internal error (KeyError")
        assert "--debug" in message
    if isinstance(error, FileNotFoundError):
        assert message == "x.csv: no such file or directory"
