"""Plans: what a subscription buys (access level, devices, resolution)."""
