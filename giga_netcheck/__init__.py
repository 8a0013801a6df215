"""giga-netcheck: find out why a school's network is slow.

The package is a pure core (config, thresholds, triage, render) around a small set of
probes and a measurement server. ``giga_netcheck.cli.main`` is the only place that exits.
"""

__version__ = "0.1.0"
"""The one place the version is written: pyproject.toml reads it from here (``dynamic``), so the
installed metadata, ``giga-netcheck version``, results and the server all say the same."""
