"""Runnable examples of streamsource (each is a small app with its tests beside it)."""
