"""hashwatch: find known material by hash, put new material first, share hash intelligence."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
