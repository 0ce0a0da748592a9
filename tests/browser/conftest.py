"""The example project, served for real, and a headless Chromium driven by Playwright.

Needs the ``playwright`` package and a Chromium: Debian's ``/usr/bin/chromium`` (or
``PLAYWRIGHT_CHROMIUM_EXECUTABLE``). Without them these tests skip, or fail under
``--require-services``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

EXAMPLE = Path(__file__).resolve().parents[2] / "example_project"
ADMIN_PASSWORD = "browser-test-password"


def chromium_path() -> str | None:
    return os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE") or shutil.which("chromium")


def missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs the playwright package (pip install -e '.[test]')"
    if not chromium_path():
        return "needs Chromium: apt-get install chromium (or set PLAYWRIGHT_CHROMIUM_EXECUTABLE)"
    return None


def require_browser(config: pytest.Config) -> None:
    """Skip without a browser, or fail under --require-services."""
    reason = missing_browser()
    if reason is None:
        return
    if config.getoption("--require-services"):
        pytest.fail(f"--require-services: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _require_browser(request: pytest.FixtureRequest) -> None:
    require_browser(request.config)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ExampleSite:
    url: str
    process: subprocess.Popen[bytes]

    def sandbox_api(self, path: str) -> dict:
        response = requests.get(f"{self.url}/sandbox/_sandbox/api/{path}", timeout=10)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def example_site(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[ExampleSite]:
    """`manage.py demo` on a free port with a fresh SQLite database, as a newcomer runs it."""
    require_browser(pytestconfig)
    port = free_port()
    database = tmp_path_factory.mktemp("example") / "db.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SENDFLARE_", "DJANGO_")) and key not in ("DATABASE_URL",)
    }
    env.update(
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{database}",
        DEMO_ADMIN_PASSWORD=ADMIN_PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    log = open(tmp_path_factory.mktemp("example-log") / "server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "demo"], cwd=EXAMPLE, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                log.flush()
                raise RuntimeError(f"manage.py demo exited: {Path(log.name).read_text()}")
            try:
                requests.get(url + "/", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("manage.py demo did not start within 60 s") from None
                time.sleep(0.2)
        yield ExampleSite(url, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(pytestconfig: pytest.Config) -> Iterator[object]:
    require_browser(pytestconfig)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def admin_page(browser, example_site):  # type: ignore[no-untyped-def]
    """A page logged into the example's admin as the demo superuser."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(example_site.url + "/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(example_site.url + "/admin/")
    yield page
    context.close()
