"""Pages of snapshots and backups: the sections of a VM's page (loaded by htmx) and their forms."""
from . import backup_views, snapshot_views

app_name = "protection"
urlpatterns = [*snapshot_views.urls, *backup_views.urls]
