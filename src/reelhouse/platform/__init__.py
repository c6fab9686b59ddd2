"""Cross-cutting parts: database, Redis, auth, rate limits, errors, pagination, health."""
