"""The quickstart's settings blocks, as a reader pastes them into a new ``startproject``.

The blocks are read from docs/tutorial/quickstart.rst itself (each follows a
``.. quickstart-settings: NAME`` comment), so the page and this test cannot drift apart; the
README's copy of the sandbox block must be the same. Each one
is appended to the settings of a project made by ``django-admin startproject`` and run through
``manage.py check`` in a subprocess, as the page tells the reader to: any message fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "docs" / "tutorial" / "quickstart.rst"
CLEAN = "System check identified no issues (0 silenced).\n"
SANDBOX_URL = "http://127.0.0.1:8025"
SEND = (
    "from django.core.mail import send_mail; "
    "print(send_mail('Hello', 'It works.', 'noreply@example.com', ['ann@example.com']))"
)


def settings_blocks(text: str) -> dict[str, str]:
    """``{name: code}`` of every ``.. quickstart-settings: NAME`` + ``.. code-block:: python``."""
    blocks: dict[str, str] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        marker = re.fullmatch(r"\.\. quickstart-settings: (\w+)", line)
        if not marker:
            continue
        directive = next(i for i in range(index + 1, len(lines)) if lines[i].strip())
        assert lines[directive] == ".. code-block:: python", f"no code block after {line!r}"
        body = []
        for code_line in lines[directive + 1 :]:
            if code_line.strip() and not code_line.startswith("    "):
                break
            body.append(code_line)
        blocks[marker.group(1)] = textwrap.dedent("\n".join(body)).strip() + "\n"
    return blocks


BLOCKS = settings_blocks(QUICKSTART.read_text(encoding="utf-8"))


def test_the_page_has_a_sandbox_block_and_a_production_block():
    assert set(BLOCKS) == {"sandbox", "production"}
    assert f'"API_URL": "{SANDBOX_URL}"' in BLOCKS["sandbox"]
    assert "API_URL" not in BLOCKS["production"]


def test_the_readmes_sandbox_block_is_the_quickstarts():
    readme = settings_blocks((ROOT / "README.rst").read_text(encoding="utf-8"))
    assert readme == {"sandbox": BLOCKS["sandbox"]}


def new_project(where: Path, block: str) -> Path:
    """``django-admin startproject mysite`` with ``block`` at the end of its settings."""
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(where)],
        check=True,
        env=environment(),
    )
    settings = where / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "\n" + block)
    return where


def environment(**extra: str) -> dict[str, str]:
    """This environment without the test suite's settings or any SENDFLARE_ variable."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DJANGO_SETTINGS_MODULE" and not key.startswith("SENDFLARE_")
    }
    return {**env, **extra}


def manage(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_sandbox_block_passes_check_without_a_message(tmp_path):
    result = manage(new_project(tmp_path, BLOCKS["sandbox"]), "check")
    assert (result.returncode, result.stdout, result.stderr) == (0, CLEAN, "")


def test_the_production_block_passes_check_with_the_pages_environment(tmp_path):
    project = new_project(tmp_path, BLOCKS["production"])
    result = manage(project, "check", SENDFLARE_API_TOKEN="a-token", SENDFLARE_APP_ID="app-1")
    assert (result.returncode, result.stdout, result.stderr) == (0, CLEAN, "")


def test_the_production_block_without_its_environment_says_what_to_set(tmp_path):
    # What the page's "How this page was tried" reports, hints included.
    result = manage(new_project(tmp_path, BLOCKS["production"]), "check")
    assert result.returncode == 1
    assert "(sendflare.E001) SENDFLARE['API_TOKEN'] is missing or empty." in result.stderr
    assert "any non-empty token works" in result.stderr  # a sandbox user is told so
    assert "(sendflare.W100)" in result.stderr
    assert "any non-empty ID works" in result.stderr
    assert "System check identified 2 issues" in result.stderr
    result = manage(tmp_path, "check", SENDFLARE_API_TOKEN="a-token")
    assert result.returncode == 0
    assert "(sendflare.W100)" in result.stderr
    assert "(sendflare.E001)" not in result.stderr


# As `python -m django_sendflare.sandbox` starts: any non-empty token, 5 requests/s.
@pytest.mark.sendflare_sandbox(token=None, rate_limit=5)
def test_the_sandbox_block_sends_into_the_sandbox(tmp_path, sendflare_sandbox):
    # The page's block, pointed at this test's sandbox instead of port 8025.
    block = BLOCKS["sandbox"].replace(SANDBOX_URL, sendflare_sandbox.url)
    result = manage(new_project(tmp_path, block), "shell", "-c", SEND)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "1"
    [message] = sendflare_sandbox.messages()
    assert (message["from"], message["to"], message["subject"]) == (
        "noreply@example.com",
        "ann@example.com",
        "Hello",
    )
