"""Fixtures of the ingest integration tests (helpers: tests/integration/ingest/ingest_app.py)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec


@pytest.fixture(scope="session")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())
