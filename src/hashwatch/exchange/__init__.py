"""Sharing hash intelligence between organisations without moving media.

* :mod:`~hashwatch.exchange.merkle` and :mod:`~hashwatch.exchange.checkpoint`: the integrity
  of a feed (an append-only Merkle log with Ed25519-signed checkpoints).
* :mod:`~hashwatch.exchange.base`: the exchange seam every peer kind implements.
"""
