"""The release files agree with each other: README, CI, LICENSE, CHANGELOG, the package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import django_sendflare

ROOT = Path(__file__).resolve().parents[1]
TEST_COMMAND = (
    'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]" && .venv/bin/python -m pytest'
)


def test_the_readme_is_a_landing_page_with_the_test_command():
    readme = (ROOT / "README.rst").read_text()
    assert len(readme.splitlines()) <= 250
    assert f"    {TEST_COMMAND}\n" in readme


def test_ci_runs_the_readme_test_command_literally():
    ci = ROOT / ".ci" / "run"
    if not ci.exists():
        pytest.skip(".ci/ is not part of the source distribution")
    assert f"\n{TEST_COMMAND}\n" in ci.read_text()


def test_the_license_file_is_the_declared_one():
    # (tomllib is Python 3.11+; the line is simple enough.)
    declared = re.search(r'^license = "(.*)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert declared is not None and declared.group(1) == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_the_changelog_has_an_entry_for_this_version():
    changelog = (ROOT / "CHANGELOG.rst").read_text()
    assert re.search(rf"^{re.escape(django_sendflare.__version__)} \(", changelog, re.MULTILINE)
