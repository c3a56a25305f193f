"""HTTP concerns every feature shares: problem documents and request ids, cursor
pagination, ``ETag``/``If-Match`` preconditions, ``Idempotency-Key``, and the entity
responses and transition problems of the content and order routes."""
