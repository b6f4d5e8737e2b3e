"""The ``hashwatch`` command line, one module per command group.

:mod:`~hashwatch.cli.main` holds the root command; :mod:`~hashwatch.cli._common` the helpers
every group shares (``--db``, the library object, JSON Lines, progress, exit codes). The console
entry is :func:`hashwatch._entry.main`.
"""
