"""peerdp test suite."""
