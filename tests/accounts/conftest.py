from __future__ import annotations

from tests.provisioning.conftest import open_test_pool, open_testdrv, testdrv_volumes  # noqa: F401
from tests.jobs.conftest import eager  # noqa: F401
