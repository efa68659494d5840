"""Baselines that need no deep model."""
