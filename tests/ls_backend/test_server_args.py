"""How `xnaming ls start` calls `label-studio init`: values that look like options stay values."""

from __future__ import annotations

import subprocess

from ls_backend.server import Credentials, LabelStudioServer


def test_a_password_starting_with_a_dash_reaches_label_studio_intact(tmp_path, monkeypatch):
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    server = LabelStudioServer(tmp_path, port=18080)
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server._run_init(Credentials(url=server.url, admin_email="a@b.org", admin_password="-x-y"))

    (command,) = calls
    assert "--password=-x-y" in command
    assert "--username=a@b.org" in command
    assert "-x-y" not in command  # never as a separate argument, which argparse would reject
