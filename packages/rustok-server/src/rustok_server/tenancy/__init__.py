"""Tenants: their table, repository and directory, the resolution of a request's tenant,
the tenant cache, and ``GET /api/tenant``."""
