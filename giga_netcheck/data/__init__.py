"""Shipped data files (no code): ``reference.yaml``, the reference figures code, SQL and catalogues share."""
