"""Fixtures of the protection tests: job tasks in this process (Celery eager), the test pool opened to alice and API
clients, as the jobs and storage tests have them (this run's own backup pool: tests/conftest.py)."""
from __future__ import annotations

from tests.jobs.conftest import eager  # noqa: F401
from tests.storage.conftest import alice_api, bob_api, open_pool, staff_api  # noqa: F401

