"""Discovery: what to watch next, ranked from the catalog, the user's plan and their viewing."""
