"""Reelhouse: the backend of a subscription video streaming service."""

__version__ = "0.1.0"
