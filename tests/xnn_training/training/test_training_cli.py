"""``xnaming data`` / ``xnaming train``: arguments, outputs named at the end, clear errors."""

import subprocess
import sys

import pytest

from xnaming.cli import main
from xnaming.errors import BAD_INPUT, NOT_FOUND


def test_help_does_not_import_torch():
    code = (
        "import sys; from xnaming.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_data_toybirds_and_check(tmp_path, capsys):
    out = tmp_path / "tb"
    assert main(["data", "toybirds", "--out", str(out), "--classes", "2", "--per-class", "3",
                 "--size", "32"]) == 0  # fmt: skip
    assert f"wrote {out}/" in capsys.readouterr().out
    assert main(["data", "check", str(out)]) == 0
    assert "train: 4 images, 2 classes (toybirds)" in capsys.readouterr().out


@pytest.mark.slow
def test_bad_input_gives_a_message_and_its_status(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nowhere")]) == NOT_FOUND
    assert "is not a directory" in capsys.readouterr().err
    out = tmp_path / "tb"
    main(["data", "toybirds", "--out", str(out), "--classes", "2", "--per-class", "2",
          "--size", "32"])  # fmt: skip
    code = main(["train", "dnn", "--data", str(out), "--arch", "alexnet9", "--out",
                 str(tmp_path / "run")])  # fmt: skip
    assert code == BAD_INPUT
    assert "unknown architecture 'alexnet9'" in capsys.readouterr().err
    code = main(["train", "xnn", "--dnn", str(tmp_path / "run"), "--out", str(tmp_path / "x")])
    assert code == NOT_FOUND
    assert "is not a directory" in capsys.readouterr().err
