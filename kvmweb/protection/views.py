"""Pages of snapshots and backups (thin: selectors and services do the work)."""
