"""fsrace: find and rule out races between page faults and block-removing operations."""

__version__ = "0.1.0"
