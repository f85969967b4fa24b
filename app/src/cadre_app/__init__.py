"""Cadre app: the `cadre` command over the core (cadre_core) and the servers; nothing below imports it."""
