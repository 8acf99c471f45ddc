"""Monitoring: usage samples of VMs and hosts, their rates and bounded history (see docs/monitoring.md).

Entry points: ``collector.Collector`` (the sampler), ``selectors.vm_series``/``host_series``/``latest_for``/
``host_latest`` (reads), ``services.vm_history_delete``.
"""
