"""What the predicate tests judge: an HTTP client's response, and its error for an error
status (below 500 an answer, 500 and above an outage)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Response:
    status_code: int


def server_error(response: Response) -> bool:
    return response.status_code >= 500


class HTTPStatusError(Exception):
    """An HTTP client's error for a response with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def client_error(error: Exception) -> bool:
    return isinstance(error, HTTPStatusError) and error.status < 500
