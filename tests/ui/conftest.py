"""Browser tests: a real `panel serve` subprocess and Debian's headless Chromium."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GLE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "ui" / "artifacts"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1600, "height": 1000}}


class PanelServer:
    """``python -m panel serve app/main.py`` on a free port; its log is drained in a thread."""

    def __init__(self):
        cmd = [sys.executable, "-m", "panel", "serve", "app/main.py", "--address", "127.0.0.1",
               "--port", "0", "--allow-websocket-origin", "*"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.log = []
        self.url = None
        ready = threading.Event()

        def drain():
            for line in self.proc.stdout:
                self.log.append(line)
                m = re.search(r"Bokeh app running at: (http://127\.0\.0\.1:\d+/\S+)", line)
                if m and not ready.is_set():
                    self.url = m.group(1)
                    ready.set()
            ready.set()
        self.thread = threading.Thread(target=drain, daemon=True)
        self.thread.start()
        if not ready.wait(60) or self.url is None:
            self.stop()
            raise RuntimeError("panel serve did not start:\n" + "".join(self.log))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def server():
    srv = PanelServer()
    yield srv
    srv.stop()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def app_page(page, server, request):
    """The dashboard loaded in a fresh page, with a screenshot saved if the test fails."""
    page.set_default_timeout(20000)
    page.goto(server.url)
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                           "Bokeh.documents[0].roots().length > 0")
    # the first screen comes first; the other views follow right after the first frame
    page.locator(".gle-complete").wait_for(state="attached")
    yield page
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        # the server's side of it: pytest shows a failing test's output (CI keeps only that)
        print("---- last lines of the server's log ----\n" + "".join(server.log[-60:]))
