"""Ocean Ops shop API service."""

__version__ = "0.1.1"
