"""Site database tests."""
