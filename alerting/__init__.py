"""Failure-rate alerting: rules (pure), evaluation state machine (pure), notifiers and runner (I/O)."""
