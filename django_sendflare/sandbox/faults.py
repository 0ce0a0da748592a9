"""Fault injection: a seeded, reproducible plan of what goes wrong with which API request.

Two sources, consulted per API request (never for the inspection endpoints):

* a queue, consumed first: "the next N requests get these faults, in order" (``"ok"``: no fault);
* probabilities per kind, drawn from a ``random.Random`` seeded at start, so that the same seed and
  the same sequence of requests give the same faults.

Every API request also waits ``latency + uniform(0, jitter)`` seconds (jitter drawn from its own
seeded generator, so that turning jitter on does not change which requests fail).

Account state, for the service codes that no request can provoke on its own: ``account`` puts
the whole account in one state (every authenticated API request is then refused with its code,
``daily_limit_reached`` for sends only), and ``invalid_sending_domains`` lists sender domains that
``/v1/send`` refuses with 100030.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: Every fault kind, in the order their probabilities are laid out on [0, 1).
FAULT_KINDS = ("latency", "429", "500", "502", "503", "reset", "html", "lost_response")
#: Kinds for which the request is answered or dropped without being processed.
UNPROCESSED_KINDS = frozenset({"429", "500", "502", "503", "reset", "html"})
#: Kinds that close the connection without any response.
DROP_KINDS = frozenset({"reset", "lost_response"})
NO_FAULT = "ok"
#: The longest latency, jitter or slow delay, in seconds: longer is a hang, not a latency.
MAX_DELAY = 3600.0
#: Account states: "active" (no refusal), or the name of the refusal every request then gets.
ACCOUNT_STATES = (
    "active",
    "invalid_signature",
    "daily_limit_reached",
    "subscription_expired",
    "not_activated",
)


def normalise_kind(kind: Any, *, allow_ok: bool) -> str:
    """Return the canonical name of a fault kind (``429`` and ``"429"`` are the same)."""
    name = str(kind).strip().lower()
    if name == NO_FAULT and allow_ok:
        return name
    if name not in FAULT_KINDS:
        extra = f", {NO_FAULT}" if allow_ok else ""
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}{extra}")
    return name


def _non_negative(value: Any, name: str) -> float:
    # NaN and infinity are refused too: time.sleep() raises on both, so one PUT would turn
    # every later API request into a 500.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0")
    return float(value)


def _delay(value: Any, name: str) -> float:
    seconds = _non_negative(value, name)
    if seconds > MAX_DELAY:
        raise ValueError(f"{name} must be at most {MAX_DELAY:.0f} seconds")
    return seconds


@dataclass
class FaultSettings:
    """What to inject; the shape of ``PUT /_sandbox/api/faults`` and of the settings/CLI."""

    seed: int | None = None
    latency: float = 0.0
    jitter: float = 0.0
    slow: float = 2.0
    rates: dict[str, float] = field(default_factory=dict)
    queue: list[str] = field(default_factory=list)
    account: str = "active"
    invalid_sending_domains: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Validate and normalise, raising ValueError with a readable message."""
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ValueError("seed must be an integer or null")
        self.latency = _delay(self.latency, "latency")
        self.jitter = _delay(self.jitter, "jitter")
        self.slow = _delay(self.slow, "slow")
        if not isinstance(self.rates, dict):
            raise ValueError("rates must be an object of kind -> probability")
        rates: dict[str, float] = {}
        for kind, probability in self.rates.items():
            value = _non_negative(probability, f"rate of {kind}")
            if value > 1:
                raise ValueError(f"rate of {kind} must be between 0 and 1")
            rates[normalise_kind(kind, allow_ok=False)] = value
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")
        self.rates = rates
        if not isinstance(self.queue, (list, tuple)):
            raise ValueError("queue must be a list of fault kinds")
        self.queue = [normalise_kind(kind, allow_ok=True) for kind in self.queue]
        if self.account not in ACCOUNT_STATES:
            raise ValueError(
                f"unknown account state {self.account!r}; known: {', '.join(ACCOUNT_STATES)}"
            )
        if not isinstance(self.invalid_sending_domains, (list, tuple)) or not all(
            isinstance(domain, str) and domain for domain in self.invalid_sending_domains
        ):
            raise ValueError("invalid_sending_domains must be a list of domain names")
        self.invalid_sending_domains = [d.lower() for d in self.invalid_sending_domains]

    @classmethod
    def from_dict(cls, data: Any) -> FaultSettings:
        """Build from the JSON API shape; missing keys take their defaults."""
        if not isinstance(data, dict):
            raise ValueError("fault settings must be a JSON object")
        known = {
            "seed",
            "latency",
            "jitter",
            "slow",
            "rates",
            "queue",
            "account",
            "invalid_sending_domains",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON API shape."""
        return {
            "seed": self.seed,
            "latency": self.latency,
            "jitter": self.jitter,
            "slow": self.slow,
            "rates": dict(self.rates),
            "queue": list(self.queue),
            "account": self.account,
            "invalid_sending_domains": list(self.invalid_sending_domains),
        }


@dataclass(frozen=True)
class FaultDecision:
    """The fault (or None) and the delay chosen for one API request."""

    kind: str | None
    delay: float


class FaultPlan:
    """The running plan: consumes the queue, then draws from the seeded generators.

    Not locked: the engine calls :meth:`next` under its lock, so that concurrent requests still
    consume the sequence one at a time.
    """

    def __init__(self, settings: FaultSettings) -> None:
        """Start the plan; without a seed one is picked and reported, so any run can be replayed."""
        seed = settings.seed
        if seed is None:
            seed = random.SystemRandom().randrange(2**32)
        self._seed: int = seed
        self.settings = FaultSettings(**{**settings.to_dict(), "seed": seed})
        self._queue: deque[str] = deque(self.settings.queue)
        # String seeds are hashed deterministically (SHA-512), unlike hash()-based seeding.
        self._fault_rng = random.Random(f"sendflare-sandbox-faults:{seed}")  # noqa: S311 - not crypto
        self._jitter_rng = random.Random(f"sendflare-sandbox-jitter:{seed}")  # noqa: S311 - not crypto

    @property
    def seed(self) -> int:
        """The seed in use (the given one or the one picked at start)."""
        return self._seed

    def queue_faults(self, kinds: list[str]) -> None:
        """Append kinds to the queue."""
        self._queue.extend(normalise_kind(kind, allow_ok=True) for kind in kinds)

    def next(self) -> FaultDecision:
        """Decide the fault and the delay of the next API request."""
        settings = self.settings
        kind: str | None = None
        if self._queue:
            queued = self._queue.popleft()
            kind = None if queued == NO_FAULT else queued
        elif settings.rates:
            draw = self._fault_rng.random()
            edge = 0.0
            for candidate in FAULT_KINDS:
                edge += settings.rates.get(candidate, 0.0)
                if draw < edge:
                    kind = candidate
                    break
        delay = settings.latency
        if settings.jitter:
            delay += self._jitter_rng.uniform(0.0, settings.jitter)
        if kind == "latency":
            delay += settings.slow
        return FaultDecision(kind, delay)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings with the queue as it now stands (what is still to come)."""
        data = self.settings.to_dict()
        data["queue"] = list(self._queue)
        return data
