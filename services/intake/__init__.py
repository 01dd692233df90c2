"""Intake: the public campaign site and JSON API. Owns the ``signatures`` table."""
