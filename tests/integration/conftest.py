"""Integration layer: fixtures live in tests/support/fixtures.py (shared with the browser layer)."""
