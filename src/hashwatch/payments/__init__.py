"""Payment screening: published red flags of paid live-streamed abuse as explainable rules.

A stage of its own beside scan and review: transaction exports (CSV, Parquet) are mapped onto
canonical columns, the relation rules run as SQL in DuckDB, network features run with networkx
on the reduced graph, and a weighted score with at least two distinct rules makes an alert for a
person to look at (``docs/payments.md``).
"""
