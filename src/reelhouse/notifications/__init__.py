"""Mail to users: an outbox written with its cause, a dispatcher that sends it, preferences."""
