"""The periodic sweep of abandoned uploads: Celery beat sends ``kvmweb.jobs.sweep_stale_web`` every
KVMWEB_SWEEP_SECONDS; it fails uploads that went quiet and removes their unfinished files."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from kvmweb import hypervisor as hv
from kvmweb.jobs.models import Job
from kvmweb.media.models import IsoImage
from tests.conftest import unique_name


def test_beat_schedule_names_the_sweep(settings) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.celery import app
    from kvmweb.jobs.tasks import sweep_stale_web

    entries = [e for e in app.conf.beat_schedule.values() if e["task"] == sweep_stale_web.name]
    assert len(entries) == 1 and entries[0]["schedule"] == float(settings.KVMWEB_SWEEP_SECONDS) > 0
    assert sweep_stale_web.name in app.tasks


@pytest.mark.django_db
def test_the_sweep_fails_a_quiet_upload_and_removes_its_file(staff, test_host, iso_pool_dir, settings) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.jobs.tasks import sweep_stale_web
    from kvmweb.media.services import iso_job, iso_pool, iso_upload_begin

    quiet = iso_upload_begin(actor=staff, host=test_host, name=f"{unique_name('quiet')}.iso", size=4096)
    busy = iso_upload_begin(actor=staff, host=test_host, name=f"{unique_name('busy')}.iso", size=4096)
    quiet_job, busy_job = iso_job(quiet), iso_job(busy)
    assert quiet_job is not None and busy_job is not None
    pool = iso_pool(test_host)
    assert pool.volume(quiet.name).path == quiet.path
    Job.objects.filter(pk=quiet_job.pk).update(heartbeat=timezone.now() - timedelta(hours=2))
    assert sweep_stale_web.apply().get() == [quiet_job.pk]
    quiet_job.refresh_from_db()
    assert quiet_job.state == Job.State.FAILED and "abandoned" in quiet_job.error
    assert not IsoImage.objects.filter(pk=quiet.pk).exists()
    with pytest.raises(hv.VolumeNotFound):
        pool.volume(quiet.name)
    # an upload that still gets pieces is left alone, until it goes quiet for longer than the setting says
    assert Job.objects.get(pk=busy_job.pk).state == Job.State.RUNNING
    assert sweep_stale_web() == []
    settings.KVMWEB_STALE_UPLOAD_SECONDS = 0
    assert sweep_stale_web() == [busy_job.pk]
    assert not IsoImage.objects.filter(pk=busy.pk).exists()
    with pytest.raises(hv.VolumeNotFound):
        pool.volume(busy.name)
