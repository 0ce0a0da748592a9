"""``python -m django_sendflare.sandbox``: starts, serves, and refuses a public bind."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from django_sendflare.sandbox.cli import build_parser, config_from_args

ROOT = Path(__file__).resolve().parents[2]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # The package may not be installed: run it from the checkout. No Django settings either.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "django_sendflare.sandbox", *args]


@contextmanager
def running_cli(*args: str) -> Iterator[str]:
    """Run ``python -m django_sendflare.sandbox --port 0 ARGS``; yield its URL."""
    process = subprocess.Popen(
        _command("--port", "0", *args),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=_environment(),
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        url = None
        while url is None:
            line = lines.get(timeout=10)  # bounded: raises queue.Empty if it never starts
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            url = match.group(1) if match else None
        yield url
    finally:
        process.terminate()
        process.wait(timeout=5)


@pytest.fixture
def cli_server() -> Iterator[str]:
    args = ("--token", "cli-token", "--rate-limit", "0", "--fault-queue", "ok,503", "--seed", "9")
    with running_cli(*args) as url:
        yield url


def test_cli_serves_the_api_at_the_root(cli_server: str) -> None:
    headers = {"Authorization": "Bearer cli-token"}
    message = {"from": "a@example.com", "to": "b@example.com", "subject": "s", "body": "b"}
    first = requests.post(f"{cli_server}/v1/send", json=message, headers=headers, timeout=5)
    assert first.json()["code"] == 0
    second = requests.post(f"{cli_server}/v1/send", json=message, headers=headers, timeout=5)
    assert second.status_code == 503  # --fault-queue ok,503
    wrong = requests.post(f"{cli_server}/v1/send", json=message, timeout=5)
    assert wrong.status_code == 401
    messages = requests.get(f"{cli_server}/_sandbox/api/messages", timeout=5).json()
    assert messages["count"] == 1
    assert requests.get(f"{cli_server}/_sandbox/api/faults", timeout=5).json()["seed"] == 9


def test_cli_refuses_a_public_bind() -> None:
    result = subprocess.run(
        _command("--host", "0.0.0.0", "--port", "0"),  # noqa: S104 - the point of the test
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert "allow-remote" in result.stderr


def test_cli_options_become_a_config() -> None:
    args = build_parser().parse_args(
        [
            "--token",
            "T",
            "--rate-limit",
            "0",
            "--max-size",
            "100",
            "--allow-sender",
            "a@example.com",
            "--allow-sender",
            "b@example.com",
            "--daily-quota",
            "3",
            "--errors-as-200",
            "--seed",
            "1",
            "--latency",
            "0.1",
            "--jitter",
            "0.2",
            "--slow",
            "1",
            "--fault-rate",
            "reset=0.1",
            "--fault-rate",
            "503=0.2",
            "--fault-queue",
            "html,ok",
            "--fault-queue",
            "lost_response",
        ]
    )
    config = config_from_args(args)
    assert config.token == "T"
    assert (config.rate_limit, config.max_message_size, config.daily_quota) == (0, 100, 3)
    assert config.allowed_senders == ("a@example.com", "b@example.com")
    assert config.errors_as_http_200 is True
    assert config.faults.to_dict() == {
        "seed": 1,
        "latency": 0.1,
        "jitter": 0.2,
        "slow": 1.0,
        "rates": {"reset": 0.1, "503": 0.2},
        "queue": ["html", "ok", "lost_response"],
        "account": "active",
        "invalid_sending_domains": [],
    }


def test_cli_rejects_bad_fault_options() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fault-rate", "reset"])
    args = build_parser().parse_args(["--fault-rate", "teapot=0.5"])
    with pytest.raises(ValueError, match="teapot"):
        config_from_args(args)


@pytest.mark.parametrize("allow_remote", [False, True])
def test_other_host_names_need_allow_remote(allow_remote: bool) -> None:
    """DNS rebinding: a page of evil.example resolving to 127.0.0.1 is refused by default."""
    with running_cli(*(["--allow-remote"] if allow_remote else [])) as url:
        rebound = requests.get(
            f"{url}/_sandbox/api/messages", headers={"Host": "evil.example"}, timeout=5
        )
        assert rebound.status_code == (200 if allow_remote else 403)
        assert requests.get(f"{url}/_sandbox/api/messages", timeout=5).status_code == 200
