"""Mailer: every email Dear MP sends. Owns the ``letters`` table."""
