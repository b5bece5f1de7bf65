"""Optimistic concurrency: two clerks change one product at once: see app.py."""
