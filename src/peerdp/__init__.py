"""peerdp: software distribution with on-demand branch distribution points."""

__version__ = "0.1.0"
