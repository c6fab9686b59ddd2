"""The reference web player: static files served at ``/player`` and the demo media for ``scripts/run``."""

from reelhouse.player.routes import PLAYER_PATH, player_router

__all__ = ["PLAYER_PATH", "player_router"]
