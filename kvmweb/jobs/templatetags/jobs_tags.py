from __future__ import annotations

from django import template

from kvmweb.jobs.models import Job

register = template.Library()


@register.simple_tag
def vm_jobs(vm: object, limit: int = 5) -> list[Job]:
    """The latest jobs about a VM the page already showed (so the viewer may see it)."""
    return list(Job.objects.filter(target_type="vm", target=str(getattr(vm, "uuid", "")))
                .select_related("actor")[:limit])
