"""Live streams: read many at once, hash one frame a second, alert on k of n matching frames.

:mod:`~hashwatch.stream.sources` (URLs, per-protocol options, redaction) →
:mod:`~hashwatch.stream.sampler` (one reader per stream: decode, sample, reconnect) →
:mod:`~hashwatch.stream.watcher` (matching for all streams, events) with
:mod:`~hashwatch.stream.alerts` (the k-of-n rule) and :mod:`~hashwatch.stream.delivery`
(webhooks, the service's match records). ``hashwatch watch`` is the command; docs/streams.md
explains the events.
"""
