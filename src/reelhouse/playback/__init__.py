"""Playback: stream sessions, the player websocket, watch history and its resume rules."""
