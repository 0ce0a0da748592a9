"""docs/reference/settings.rst documents every setting of the one table, as the table says.

A setting added to ``django_sendflare.conf.SETTINGS`` without its entry in the reference fails
here, with the entry to paste in the message. ``python -m tests.test_settings_reference`` prints
every entry.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from django_sendflare.conf import SETTINGS, Setting
from django_sendflare.sandbox.mounted import KNOWN_KEYS as SANDBOX_KEYS

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "settings.rst"
# An entry's title: ``KEY`` underlined with "^"; the SENDFLARE_SANDBOX keys follow this label.
TITLE = re.compile(r"^``([A-Z0-9_]+)``\n\^+$", re.MULTILINE)
SANDBOX_LABEL = "\n.. _settings-sandbox:\n"


def entry(setting: Setting) -> str:
    """The reference entry of one setting, generated from the table."""
    title = f"``{setting.key}``"
    checks = ", ".join(f"``{check_id}``" for check_id in setting.validator.check_ids)
    return "\n".join(
        [
            f".. _setting-{setting.key}:",
            "",
            title,
            "^" * len(title),
            "",
            f":Type: {setting.validator.expected}",
            f":Default: ``{setting.default!r}``",
            f":Checked by: {checks}",
            "",
            setting.help,
            "",
        ]
    )


def documented(*, sandbox: bool) -> list[str]:
    """The keys with an entry, in order: of SENDFLARE, or of SENDFLARE_SANDBOX."""
    sendflare_part, _, sandbox_part = REFERENCE.read_text().partition(SANDBOX_LABEL)
    return TITLE.findall(sandbox_part if sandbox else sendflare_part)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.key)
def test_every_setting_of_the_table_is_documented_as_the_table_says(setting: Setting) -> None:
    assert entry(setting) in REFERENCE.read_text(), (
        f"docs/reference/settings.rst lacks, or has another text for, {setting.key}. "
        f"Paste this entry (generated from the table):\n\n{entry(setting)}"
    )


def test_the_reference_documents_no_setting_the_table_lacks() -> None:
    assert documented(sandbox=False) == [setting.key for setting in SETTINGS]


def test_every_sandbox_setting_is_documented() -> None:
    assert sorted(documented(sandbox=True)) == sorted(SANDBOX_KEYS)


if __name__ == "__main__":  # pragma: no cover
    print("\n".join(entry(setting) for setting in SETTINGS))
