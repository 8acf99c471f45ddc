"""REST API of snapshots and backups (DRF; thin)."""
