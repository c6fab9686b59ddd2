"""Admin-only controllers that span domains."""
