"""API of snapshots and backups (under /api/v1/)."""
from . import backup_api, snapshot_api

urlpatterns = [*snapshot_api.urls, *backup_api.urls]
