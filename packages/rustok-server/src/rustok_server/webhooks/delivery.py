"""The deliverer: sends the due deliveries of the outbox, signed, through rustok-core's
breaker, retry schedule and bulkhead."""

from __future__ import annotations

from rustok_server.db import Database
from rustok_server.settings import Settings

__all__ = ["Deliverer"]


class Deliverer:
    """Delivers the due webhook deliveries in the background of one process.

    Args:
        database: the database of the outbox.
        settings: the ``webhook_*`` settings.
    """

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    def start(self) -> None:
        """Start delivering in the background."""

    async def stop(self) -> None:
        """Stop delivering; waits for the attempts in flight to end or be cancelled."""
