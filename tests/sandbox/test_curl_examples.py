"""Every curl example of the API documents, run with the real curl against the standalone server.

Only the base URL and ``<token>`` are changed, plus the two shell quirks NOTES.md records: the
contact-list example needs ``-G`` (curl sends ``-d`` as a body otherwise) and the delete example's
URL must be quoted (an unquoted ``&`` ends the command).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from django_sendflare.sandbox.server import RunningSandbox
from tests.sandbox.conftest import assert_envelope

# The providers' documents, as published, are kept in docs/provider-api/; SENDFLARE_API_DOCS can
# point at newer copies.
API_DIR = Path(
    os.environ.get(
        "SENDFLARE_API_DOCS", Path(__file__).resolve().parents[2] / "docs" / "provider-api"
    )
)
DOCUMENTS = sorted(API_DIR.glob("*.txt"))
BASE_URL_RE = re.compile(r"https://api\.(?:sendflare\.io|sendkit\.best)")
TOKEN = "curl-doc-token"

pytestmark = [
    pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl binary"),
]


def curl_commands(text: str) -> list[str]:
    """The curl commands of a document: continuation lines and multi-line quoted bodies."""
    lines = text.splitlines()
    commands = []
    index = 0
    while index < len(lines):
        if lines[index].startswith("curl "):
            block = [lines[index]]
            while index + 1 < len(lines) and (
                block[-1].rstrip().endswith("\\") or "\n".join(block).count("'") % 2
            ):
                index += 1
                block.append(lines[index])
            commands.append("\n".join(block))
        index += 1
    return commands


def example_responses(text: str) -> list[Any]:
    """The JSON of each "Example Response:" of a document."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r"Example Response:\s*", text):
        value, _ = decoder.raw_decode(text, match.end())
        found.append(value)
    return found


def adapt(command: str, url: str, *, fix_quirks: bool = True) -> str:
    """Change only the base URL and the token, and fix the documented shell quirks."""
    command = BASE_URL_RE.sub(url, command).replace("<token>", TOKEN)
    if fix_quirks and "-X GET" in command and " -d " in command:
        command = command.replace("curl ", "curl -G ", 1)
    if fix_quirks and "-X DELETE" in command:
        command = re.sub(r"(-X DELETE )(\S+)", r"\1'\2'", command)
    return command


def run(command: str) -> Any:
    result = subprocess.run(
        ["/bin/sh", "-c", command + " -sS --max-time 10"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_documents_have_the_expected_examples() -> None:
    assert [d.name for d in DOCUMENTS] == ["sendflare-api.txt", "sendkit-api.txt"]
    for document in DOCUMENTS:
        commands = curl_commands(document.read_text())
        methods = [re.search(r"-X (\w+)", c).group(1) for c in commands]  # type: ignore[union-attr]
        assert methods == ["POST", "GET", "POST", "DELETE"], document.name


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.stem)
def test_every_curl_example_gets_the_documented_envelope(
    document: Path, make_server: Callable[..., RunningSandbox]
) -> None:
    # The documented defaults: this token only, 5 requests/s.
    server = make_server(token=TOKEN, rate_limit=5)
    text = document.read_text()
    send, listing, save, delete = (adapt(c, server.url) for c in curl_commands(text))
    examples = example_responses(text)
    envelope_keys = set(examples[0])

    sent = run(send)
    assert set(sent) == envelope_keys
    assert_envelope(sent, 0)
    assert sent["data"] is None
    [message] = server.sandbox.messages()
    assert (message["from"], message["to"], message["subject"], message["body"]) == (
        "from@example.com",
        "to@example.com",
        "test send",
        "test content",
    )

    empty = run(listing)
    assert_envelope(empty, 0)
    assert (empty["data"]["total"], empty["data"]["page"], empty["data"]["pageSize"]) == (0, 1, 50)
    assert empty["data"]["list"] == []

    saved = run(save)
    assert_envelope(saved, 0)
    assert saved["data"] is None
    listed = run(listing)
    assert_envelope(listed, 0)
    documented = examples[1]["data"]
    assert set(listed["data"]) >= set(documented)
    [contact] = listed["data"]["list"]
    assert set(contact) >= set(documented["list"][0])
    # The saved example contact, as the documented list example shows it.
    for name in ("emailAddress", "status", "firstName", "lastName", "vipLevel", "birthday"):
        assert contact[name] == documented["list"][0][name]
    assert {type(v) for k, v in contact.items() if k != "vipLevel"} == {str}

    deleted = run(delete)
    assert_envelope(deleted, 0)
    assert deleted["data"] is None
    assert server.sandbox.contacts("1234567890") == []
    assert [r["status"] for r in server.sandbox.requests()] == [200] * 5


def test_without_g_the_list_example_sends_no_query(
    make_server: Callable[..., RunningSandbox],
) -> None:
    server = make_server(token=TOKEN)
    listing = curl_commands(DOCUMENTS[0].read_text())[1]
    response = run(adapt(listing, server.url, fix_quirks=False))
    assert_envelope(response, 100033)
    assert "appId" in response["message"]
