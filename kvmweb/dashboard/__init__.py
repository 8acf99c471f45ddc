"""The landing page: per-host capacity and usage for staff, a person's VMs, quota and jobs for users."""
