"""``python -m django_sendflare.sandbox``: run the standalone sandbox (no Django project needed)."""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
from collections.abc import Sequence

from django_sendflare.sandbox.engine import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_RATE_LIMIT,
    Sandbox,
    SandboxConfig,
)
from django_sendflare.sandbox.faults import FAULT_KINDS, FaultSettings
from django_sendflare.sandbox.guard import is_loopback
from django_sendflare.sandbox.server import make_server

logger = logging.getLogger("django_sendflare.sandbox")


def _fault_rate(text: str) -> tuple[str, float]:
    kind, sep, probability = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KIND=PROBABILITY, got {text!r}")
    try:
        return kind.strip(), float(probability)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{probability!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m django_sendflare.sandbox",
        description=(
            "A local emulator of the Sendflare / SendKit email API. It keeps everything in memory "
            "and never sends mail. The API is served at the root (API_URL=http://HOST:PORT); the "
            "inbox and the inspection API are under /_sandbox/."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8025, help="port (default 8025; 0: any free)")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help=(
            "allow a non-loopback --host, and Host names other than localhost, 127.0.0.1 and "
            "[::1] (everyone who can reach it can read every message)"
        ),
    )
    parser.add_argument("--token", help="the only Bearer token accepted (default: any non-empty)")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=DEFAULT_RATE_LIMIT,
        help=f"requests per second per token, all endpoints (default {DEFAULT_RATE_LIMIT}; 0: off)",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        help=f"largest /v1/send body in bytes (code 100023; default {DEFAULT_MAX_MESSAGE_SIZE})",
    )
    parser.add_argument(
        "--allow-sender",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="accept only these senders (repeatable; others get code 100048)",
    )
    parser.add_argument(
        "--daily-quota", type=int, default=0, help="sends per token per UTC day (code 100031)"
    )
    parser.add_argument(
        "--errors-as-200",
        action="store_true",
        help="answer service errors with HTTP 200 and the envelope, instead of 4xx",
    )
    parser.add_argument("--seed", type=int, help="fault seed (default: random, and logged)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to API requests")
    parser.add_argument("--jitter", type=float, default=0.0, help="plus uniform(0, JITTER) s")
    parser.add_argument("--slow", type=float, default=2.0, help="seconds of the 'latency' fault")
    parser.add_argument(
        "--fault-rate",
        type=_fault_rate,
        action="append",
        default=[],
        metavar="KIND=P",
        help=f"probability of a fault per API request (repeatable); {', '.join(FAULT_KINDS)}",
    )
    parser.add_argument(
        "--fault-queue",
        action="append",
        default=[],
        metavar="KIND[,KIND...]",
        help="faults for the next API requests, in order ('ok': none); repeatable",
    )
    parser.add_argument(
        "--seed-contacts",
        metavar="FILE",
        help=(
            "load contacts at start, without API calls: a JSON-lines file, one save-contact "
            'request body per line ({"appId": ..., "emailAddress": ..., "status": ..., data})'
        ),
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """Turn parsed options into a :class:`SandboxConfig` (ValueError when inconsistent)."""
    queue = [kind for item in args.fault_queue for kind in item.split(",") if kind.strip()]
    faults = FaultSettings(
        seed=args.seed,
        latency=args.latency,
        jitter=args.jitter,
        slow=args.slow,
        rates=dict(args.fault_rate),
        queue=queue,
    )
    return SandboxConfig(
        token=args.token,
        rate_limit=args.rate_limit,
        max_message_size=args.max_size,
        allowed_senders=tuple(args.allow_sender),
        daily_quota=args.daily_quota,
        errors_as_http_200=args.errors_as_200,
        faults=faults,
    )


def seed_contacts(sandbox: Sandbox, path: str) -> int:
    """Load the contacts of the JSON-lines file ``path`` into ``sandbox`` (``--seed-contacts``)."""
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    with open(path, encoding="utf-8") as lines:
        try:
            count = sandbox._store.seed_contacts(lines, today=today)
        except ValueError as error:
            raise ValueError(f"--seed-contacts {path}: {error}") from None
    logger.info("seeded %d contact(s) from %s", count, path)
    return count


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until interrupted; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        sandbox = Sandbox(config_from_args(args))
        if args.seed_contacts:
            seed_contacts(sandbox, args.seed_contacts)
        server = make_server(
            host=args.host, port=args.port, allow_remote=args.allow_remote, sandbox=sandbox
        )
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    if not is_loopback(args.host):
        logger.warning(
            "listening on %s, reachable from other machines: no real authentication, and the "
            "inbox shows every message",
            args.host,
        )
    elif args.allow_remote:
        logger.warning(
            "--allow-remote: serving any Host name, so a web page whose name resolves to this "
            "machine (DNS rebinding) can read the inbox"
        )
    logger.info(
        "Sendflare sandbox listening on %s (API_URL=%s, inbox %s/_sandbox/, token %s, "
        "rate limit %s, fault seed %s). It never sends mail.",
        server.url,
        server.url,
        server.url,
        "required" if args.token else "any",
        f"{args.rate_limit}/s" if args.rate_limit else "off",
        sandbox.faults()["seed"],
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
