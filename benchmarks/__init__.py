"""Reelhouse benchmarks: ``scripts/bench`` runs :mod:`benchmarks.run` (see README, "Performance")."""
