"""The service context of one contacts run: built once, shared by every user of the run.

The outbox delivery, the full sync and the admin's actions all need the same things: the
client (and through it the account's rate limiter), the app id, the settings and the adapter.
:meth:`ServiceContext.build` is the one place that checks ``APP_ID`` and gets the client.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..client import SendflareClient, get_client
from ..conf import SendflareSettings, get_settings
from ..exceptions import SendflareConfigurationError
from . import state as state_mod
from .adapter import ContactAdapter, get_adapter


@dataclass(frozen=True)
class ServiceContext:
    """What one run of the contacts services shares."""

    client: SendflareClient
    adapter: ContactAdapter
    settings: SendflareSettings
    #: The database the outbox and the sync state are written to.
    using: str

    @property
    def app_id(self) -> str:
        return self.settings.app_id or ""

    @property
    def recreate_to_change_status(self) -> bool:
        return self.settings.contacts_recreate_to_change_status

    @classmethod
    def build(
        cls,
        *,
        client: SendflareClient | None = None,
        adapter: ContactAdapter | None = None,
        purpose: str = "contacts cannot be synced",
    ) -> ServiceContext:
        """The context of a run; raises :class:`SendflareConfigurationError` without APP_ID."""
        conf = get_settings()
        if not conf.app_id:
            raise SendflareConfigurationError(f"SENDFLARE['APP_ID'] is not set: {purpose}.")
        return cls(
            client=client or get_client(conf),
            adapter=adapter or get_adapter(),
            settings=conf,
            using=state_mod.db_alias(),
        )
