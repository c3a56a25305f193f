"""What every delivery request carries: its Standard Webhooks signature and its trace.

The signature follows the Standard Webhooks specification, computed by the
``standardwebhooks`` library rather than by our own crypto: ``webhook-id`` (the event's
id, the same for every attempt, so that a receiver deduplicates by it),
``webhook-timestamp`` (seconds since the epoch of this attempt) and
``webhook-signature``, ``v1,<base64 HMAC-SHA256 of id.timestamp.body>`` for each secret
that signs: the endpoint's, and during the grace time after a rotation its previous one
too, separated by a space. A receiver verifies with any Standard Webhooks library::

    from standardwebhooks import Webhook

    Webhook(secret).verify(body, headers)  # raises WebhookVerificationError

``traceparent`` (W3C Trace Context) lets the receiver's trace join the delivery's: the
delivery's client span when tracing is on, a fresh random trace otherwise.

Examples:
    >>> from datetime import UTC, datetime
    >>> headers = delivery_headers(
    ...     "3f0c",
    ...     datetime(2026, 12, 7, tzinfo=UTC),
    ...     "{}",
    ...     ["whsec_c2VjcmV0LXNlY3JldA=="],
    ...     traceparent=fresh_traceparent(),
    ... )
    >>> headers["webhook-timestamp"], headers["webhook-signature"].startswith("v1,")
    ('1796601600', True)
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from math import floor
from typing import Final

from standardwebhooks import Webhook

from rustok_server.__about__ import __version__

__all__ = ["USER_AGENT", "delivery_headers", "fresh_traceparent", "sign"]

USER_AGENT: Final = f"RusTok-Webhooks/{__version__}"
"""The ``User-Agent`` of every delivery."""


def sign(message_id: str, at: datetime, body: str, signing_secrets: Iterable[str]) -> str:
    """The ``webhook-signature`` header: one ``v1,`` signature per secret, space-separated.

    Args:
        message_id: the ``webhook-id`` (the event's id).
        at: the ``webhook-timestamp``.
        body: the body exactly as sent.
        signing_secrets: ``whsec_`` secrets, the current one first.
    """
    return " ".join(Webhook(secret).sign(message_id, at, body) for secret in signing_secrets)


def fresh_traceparent() -> str:
    """A new W3C ``traceparent``: a random trace and parent id, sampled."""
    trace_id = secrets.token_hex(16)
    span_id = secrets.token_hex(8)
    if int(trace_id, 16) == 0 or int(span_id, 16) == 0:  # all-zero ids are invalid
        return fresh_traceparent()
    return f"00-{trace_id}-{span_id}-01"


def delivery_headers(
    message_id: str,
    at: datetime,
    body: str,
    signing_secrets: Iterable[str],
    *,
    traceparent: str,
) -> dict[str, str]:
    """The headers of one delivery attempt (the ``Host`` header aside).

    Args:
        message_id: the event's id, sent as ``webhook-id``.
        at: the attempt's time, sent as ``webhook-timestamp`` (whole seconds).
        body: the JSON body as sent.
        signing_secrets: the secrets that sign, the current one first.
        traceparent: the W3C ``traceparent`` to send.
    """
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": sign(message_id, at, body, signing_secrets),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "traceparent": traceparent,
        # The response body is read raw and only its first bytes: never a compressed one.
        "accept-encoding": "identity",
    }
