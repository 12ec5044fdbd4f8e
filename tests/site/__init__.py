"""Site server tests."""
