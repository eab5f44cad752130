"""Every `python -m tf_gadn.X` command ends a user's mistake with one `error: ...` line and exit status 1 (tf_gadn.cli),
and lets a bug's traceback through."""

import os
import subprocess
import sys

import pytest

from tf_gadn import cli
from tf_gadn.training.checkpoints import CheckpointError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_result_passes_through():
    assert cli.explained(lambda: {"a": 1}) == (0, {"a": 1})


@pytest.mark.parametrize(
    "error", [ValueError("bad value"), CheckpointError("bad value"), FileNotFoundError("bad value")]
)
def test_a_user_error_is_one_line_and_status_1(error, capsys):
    def fail():
        raise error

    assert cli.explained(fail) == (1, None)
    assert capsys.readouterr().err == "error: bad value\n"


def test_a_bug_is_not_hidden_and_a_command_can_add_its_own_errors(capsys):
    def bug():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        cli.explained(bug)
    assert cli.explained(bug, KeyError) == (1, None)
    assert capsys.readouterr().err == "error: 'bug'\n"


def test_evaluate_of_a_missing_run_says_so(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tf_gadn.evaluate", f"--model_dir={tmp_path / 'none'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert "is not a tf_gadn model directory" in result.stderr
