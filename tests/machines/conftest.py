"""Fixtures of the machines tests: an API client logged in as the owner."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api(owner) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(owner)
    return client
