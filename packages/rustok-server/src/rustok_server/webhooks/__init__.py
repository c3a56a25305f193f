"""Signed webhooks: each tenant's endpoints, the outbox of events written with every
change, and their delivery through rustok-core's breaker, retry and bulkhead."""
