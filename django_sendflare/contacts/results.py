"""What bringing one user's contact up to date did, and the one mapping of errors to outcomes.

Every room of the contacts package that makes a call or reads the listing turns what went wrong
into an :class:`Outcome` here, and nowhere else: :func:`failure_of` for an error that ended a
user's step, :func:`calling` around each API call and :func:`listing_failure` for a read of the
list (a failure outside the API's own errors, the rate limiter's store or a library, is
transient and never reaches the caller raw).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import SendflareAPIError
from ..queue import LeaseLost
from ..redaction import error_text

logger = logging.getLogger(__name__)


class Outcome(str, enum.Enum):
    """What bringing one user up to date did."""

    SAVED = "saved"
    DELETED = "deleted"
    UNCHANGED = "unchanged"  # the contact already matches: no call
    SKIPPED = "skipped"  # not synced (should_sync() is False, or nothing to delete): no call
    RETRY = "retry"  # a transient failure: tried again later
    FAILED = "failed"  # a permanent failure (or too many transient ones): parked
    BUSY = "busy"  # another worker holds this user


@dataclass
class UserResult:
    """The result of bringing (or deleting) the contact of one user."""

    user_key: str
    outcome: Outcome
    email: str = ""
    calls: int = 0
    error: str = ""
    #: The failure is transient (the API or the limiter is down): try again later.
    transient: bool = False
    #: The failure concerns the account (bad token...): every other user would fail too.
    account_level: bool = False
    #: The failure is a conflict: another synced user has the address (reported, not an error
    #: of the full sync).
    conflict: bool = False
    #: The outbox rows read (and resolved, when the outcome is not a failure).
    row_ids: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome not in (Outcome.RETRY, Outcome.FAILED)


class CallFailed(Exception):
    """A call failed outside the API's own errors (the limiter, a library): transient."""


class LiveReadFailed(Exception):
    """The listing could not be read when a live status was needed: a transient failure.

    Never read as "Confirmed": the work waits for its next attempt.
    """


class ListingFailed(Exception):
    """The contact list could not be read (to the end): ``error`` says why."""

    def __init__(self, error: str, *, account_level: bool = False) -> None:
        super().__init__(error)
        self.error = error
        self.account_level = account_level


def listing_failure(error: BaseException) -> ListingFailed:
    """What a failed read of the contact list means (the API's error, or a transient one)."""
    if isinstance(error, SendflareAPIError):
        return ListingFailed(str(error), account_level=error.account_level)
    # The limiter's store or a library failed: transient too, and never raw to our caller.
    logger.warning(
        "Sendflare: reading the contact list failed: %s: %s",
        type(error).__name__,
        error_text(error),
    )
    return ListingFailed(f"the list could not be read ({type(error).__name__})")


class Permanent(Exception):
    """A failure that no retry can fix (an invalid mapping, a conflict, a step that loops)."""


@dataclass(frozen=True)
class Failure:
    """How an error ends a user's step."""

    outcome: Outcome
    error: str
    transient: bool = False
    account_level: bool = False


def failure_of(error: BaseException, *, user_key: str = "") -> Failure:
    """The outcome of an error that ended a user's step (call it inside the ``except``)."""
    if isinstance(error, LeaseLost):
        return Failure(Outcome.BUSY, str(error))
    if isinstance(error, (LiveReadFailed, CallFailed)):
        return Failure(Outcome.RETRY, str(error), transient=True)
    if isinstance(error, ListingFailed):  # an account-level failure of a live read
        return Failure(Outcome.RETRY, str(error), transient=True, account_level=error.account_level)
    if isinstance(error, SendflareAPIError):
        transient = error.retryable or error.account_level
        return Failure(
            Outcome.RETRY if transient else Outcome.FAILED,
            str(error),
            transient=transient,
            account_level=error.account_level,
        )
    if isinstance(error, (Permanent, ValueError)):
        return Failure(Outcome.FAILED, str(error))
    # An adapter bug must not stop the worker: park the change and say why.
    logger.error(
        "Sendflare: bringing the contact of user %s up to date failed",
        user_key,
        exc_info=(type(error), error, error.__traceback__),
    )
    return Failure(Outcome.FAILED, f"{type(error).__name__}: {error}")


@contextmanager
def calling(what: str = "a contact call") -> Iterator[None]:
    """Around an API call: the API's own errors pass; anything else becomes :class:`CallFailed`."""
    try:
        yield
    except (SendflareAPIError, ValueError):
        raise
    except Exception as error:
        # The limiter's store or a library failed: the call may be retried; never raw.
        logger.warning(
            "Sendflare: %s failed: %s: %s", what, type(error).__name__, error_text(error)
        )
        raise CallFailed(
            f"the call could not be made ({type(error).__name__}; the rate limiter's store "
            "or the connection failed)"
        ) from None
