"""Thin command-line layer: one module per command, heavy imports inside ``run``."""
