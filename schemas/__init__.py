"""Canonical mailpulse event model, statuses and provider mappings. Pure: no I/O imports."""
