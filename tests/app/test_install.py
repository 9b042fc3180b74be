"""A real install: the wheel, in a fresh venv, away from the repository, serves every preset.

Builds the wheel of this checkout, installs it (with its dependencies, from the package index
or pip's cache) into a new virtual environment, then from a folder outside the repository:
imports resolve to site-packages, every preset, lesson and page script is packaged, and a
``gle-lab`` server started from that venv sends a document that lists every preset.
"""
import asyncio
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gle_lab.loadclient import BokehTab, GleLabServer
from gle_lab.presets import PRESETS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

PROBE = r"""
import json, gle_core, gle_lab
from gle_lab.lessons import LESSONS
from gle_lab.presets import PRESETS
from gle_lab.views.style import PAINT_FIXES_JS
print(json.dumps({"gle_lab": gle_lab.__file__, "gle_core": gle_core.__file__,
                  "presets": list(PRESETS), "lessons": len(LESSONS),
                  "paint_fixes": len(PAINT_FIXES_JS)}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp, capture_output=True, text=True,  # noqa
                                      timeout=600)
    # build from a copy of the tracked files: nothing stale (an old build/ folder) gets in,
    # and the checkout is left as it was
    src = tmp / "src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    built = run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp),
                str(src))
    assert built.returncode == 0, built.stderr[-3000:]
    wheels = list(tmp.glob("gle_lab-*.whl"))
    assert len(wheels) == 1
    made = run(sys.executable, "-m", "venv", str(tmp / "venv"))
    assert made.returncode == 0, made.stderr
    py = tmp / "venv" / "bin" / "python"
    inst = run(str(py), "-m", "pip", "install", "-q", str(wheels[0]))
    assert inst.returncode == 0, inst.stderr[-3000:]
    return tmp, py


def test_wheel_holds_the_data_and_imports_from_site_packages(installed):
    tmp, py = installed
    out = subprocess.run([str(py), "-c", PROBE], cwd=tmp, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout)
    for mod in ("gle_lab", "gle_core"):
        assert "site-packages" in info[mod] and str(ROOT) not in info[mod]
    assert info["presets"] == list(PRESETS)
    assert info["lessons"] >= len(PRESETS)
    assert info["paint_fixes"] > 1000
    # no bare, generic top-level module is installed
    site = Path(info["gle_lab"]).parents[1]
    assert not (site / "app").exists() and not (site / "assets").exists()
    runner = subprocess.run([str(py.parent / "gle-run"), "--help"], cwd=tmp,
                            capture_output=True, text=True, timeout=120)
    assert runner.returncode == 0 and "lagline" in runner.stdout


def test_installed_gle_lab_serves_every_preset(installed):
    tmp, py = installed
    srv = GleLabServer(python=str(py), cwd=str(tmp))
    try:
        box = {}

        def client():
            async def go():
                tab = BokehTab(srv.url)
                ok = await tab.connect(60)
                tab.close()
                return ok, tab.doc
            box["result"] = asyncio.run(go())
        th = threading.Thread(target=client, daemon=True)
        th.start()
        th.join(120)
        ok, doc = box["result"]
    finally:
        srv.stop()
    assert ok
    text = json.dumps(doc, ensure_ascii=False)
    for cfg in PRESETS.values():
        assert cfg["title"] in text, cfg["title"]
