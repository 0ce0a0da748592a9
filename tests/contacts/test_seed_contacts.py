"""``python -m django_sendflare.sandbox --seed-contacts FILE``: a large list without API calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from django_sendflare.sandbox.cli import build_parser, config_from_args, seed_contacts
from django_sendflare.sandbox.engine import Sandbox


def sandbox_seeded(path: Path) -> Sandbox:
    args = build_parser().parse_args(["--seed-contacts", str(path)])
    sandbox = Sandbox(config_from_args(args))
    seed_contacts(sandbox, args.seed_contacts)
    return sandbox


def test_seeded_contacts_are_listed_as_saved_ones(tmp_path: Path) -> None:
    path = tmp_path / "contacts.jsonl"
    lines = [
        {"appId": "app", "emailAddress": "Ann@Example.com", "status": "Unsubscribed"},
        {
            "appId": "app",
            "emailAddress": "bob@example.com",
            "status": "Confirmed",
            "firstName": "B",
        },
        {"appId": "other", "emailAddress": "cy@example.com", "status": "Confirmed"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    sandbox = sandbox_seeded(path)
    listed = {c.email: c for c in sandbox._store.contacts["app"]}
    assert set(listed) == {"Ann@Example.com", "bob@example.com"}
    assert listed["Ann@Example.com"].status == "Unsubscribed"
    assert listed["bob@example.com"].data == {"firstName": "B"}
    assert [c.email for c in sandbox._store.contacts["other"]] == ["cy@example.com"]


def test_a_bad_line_names_its_number_and_loads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "contacts.jsonl"
    path.write_text(
        json.dumps({"appId": "app", "emailAddress": "a@example.com", "status": "Confirmed"})
        + "\n"
        + json.dumps({"appId": "app", "emailAddress": "b@example.com"})
        + "\n"
    )
    args = build_parser().parse_args(["--seed-contacts", str(path)])
    sandbox = Sandbox(config_from_args(args))
    with pytest.raises(ValueError, match="line 2: appId, emailAddress and status are required"):
        seed_contacts(sandbox, args.seed_contacts)
    assert sandbox._store.contacts == {}
