"""Reads of the provisioning catalogue: flavors and the templates a person may start a VM from."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from kvmweb.access.permissions import Actor, actor_id, is_authenticated, is_staff
from kvmweb.core.errors import NotFoundError

from .models import Flavor, Template


def flavor_list() -> QuerySet[Flavor]:
    return Flavor.objects.all()


def flavor_get(pk: int | str) -> Flavor:
    try:
        return Flavor.objects.get(pk=int(pk))
    except (TypeError, ValueError, Flavor.DoesNotExist):
        raise NotFoundError("No such flavor.") from None


def template_queryset(actor: Actor) -> QuerySet[Template]:
    templates = Template.objects.select_related("image", "image__host", "flavor", "owner")
    if not is_authenticated(actor):
        return templates.none()
    if is_staff(actor):
        return templates
    return templates.filter(Q(public=True) | Q(owner_id=actor_id(actor)))


def template_get(*, actor: Actor, pk: int | str) -> Template:
    try:
        key = int(pk)
    except (TypeError, ValueError):
        raise NotFoundError("No such template.") from None
    template = template_queryset(actor).filter(pk=key).first()
    if template is None:
        raise NotFoundError("No such template.")
    return template
