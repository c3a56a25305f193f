"""The webhook API, ``/api/webhooks``: a tenant's endpoints and their deliveries."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter

__all__ = ["router"]

PREFIX: Final = "/api/webhooks"

router: Final[APIRouter] = APIRouter(prefix=PREFIX, tags=["webhooks"])
"""The webhook routes (``/api/webhooks``)."""
