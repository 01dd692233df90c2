"""Operator commands: the dearmp CLI, status, staff accounts, make run."""
