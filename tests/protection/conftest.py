"""Fixtures of the protection tests: job tasks run in this process (Celery eager)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def eager() -> Iterator[None]:
    """Job tasks run in this process when sent (wrap the sending code in django_capture_on_commit_callbacks)."""
    from kvmweb.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = old
