"""The headless runner prints a parsable summary of learned vs teacher parameters."""
import json
import subprocess
import sys

import pytest


def test_gle_run_lagnet_json_summary():
    out = subprocess.run([sys.executable, "-m", "gle_core", "lagnet", "--duration", "120",
                          "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["protocol"] == "lagnet" and s["error_mode"] == "gle"
    assert s["t"] == pytest.approx(120.0)
    assert s["teacher_W"][0] == [[-0.5], [1.0]]
    assert s["W"][1:] == s["teacher_W"][1:]        # only W1 learns
    assert 0 < s["final_loss"] < 1.0
    assert "step" in out.stderr                    # the progress bar went to stderr


def test_gle_run_rejects_unknown_protocol():
    out = subprocess.run([sys.executable, "-m", "gle_core", "nope"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "invalid choice" in out.stderr
