"""Flavors and templates: staff keep the catalogue (named sizes; public templates made of a disk image, a flavor and
defaults), and a person turns their own shut-off VM into a private template.

Every change: permission → validation (all field errors at once) → the change → an audit row; the result carries
the words a person reads. ``template_from_vm`` queues the ``template.from_vm`` job: a full qcow2 copy of the VM's
first writable disk into the host's image pool, which becomes a private disk image (it counts in the person's disk
quota) and the template that starts from it. A failed, cancelled or killed job removes the copy and both rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, actor_id, is_staff, require_login, require_staff
from kvmweb.accounts.selectors import quota_reservation
from kvmweb.accounts.services import check_quota, quota_held
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, FieldErrors, NotFoundError, PermissionDeniedError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.runner import JobContext, undo_record
from kvmweb.jobs.services import job_create
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_audited, vm_checked, vm_recheck
from kvmweb.media.models import IsoImage
from kvmweb.media.services import image_pool
from kvmweb.storage.clone import CopyWatcher
from kvmweb.storage.models import VolumeOwner
from kvmweb.storage.services import check_space, volume_owner_record

from .fields import flag_field, name_field, size_field, text_field
from .models import Flavor, Template
from .osinfo import GENERIC, os_variant
from .selectors import flavor_get, image_in_use

MiB, GiB = hv.MiB, 1024**3
MIN_MEMORY_MIB = 16
MAX_MEMORY_MIB = 16 * 1024 * 1024  # 16 TiB
MAX_VCPUS = 4096
MAX_DISK_BYTES = 64 * 1024**4
FROM_VM = "template.from_vm"  # the job kind


def _audit(actor: Actor, action: str, what: str, host: str = ""):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type=what.split(" ", 1)[0], target=what, host=host)


# ------------------------------------------------------------------------------------------------ flavors
@dataclass(frozen=True)
class FlavorResult:
    flavor: Flavor
    message: str


def flavor_validate(*, name: object, vcpus: object, memory: object, disk: object,
                    description: object = "") -> dict[str, Any]:
    """The model's fields from what a person typed (sizes like '2G', '512M'); every problem as a field error."""
    errors = FieldErrors()
    values: dict[str, Any] = {"name": name_field(name, errors),
                              "description": text_field(description, "description", 200, errors)}
    try:
        count = int(str(vcpus).strip()) if not isinstance(vcpus, bool) else 0
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_VCPUS:
        errors.add("vcpus", f"a whole number from 1 to {MAX_VCPUS}")
    values["vcpus"] = count
    memory_bytes = size_field(memory, "memory", "M", errors)
    if memory_bytes is not None and not MIN_MEMORY_MIB <= memory_bytes // MiB <= MAX_MEMORY_MIB:
        errors.add("memory", f"from {MIN_MEMORY_MIB} MiB to 16 TiB")
    values["memory_mib"] = (memory_bytes or 0) // MiB
    disk_bytes = size_field(disk, "disk", "G", errors)
    if disk_bytes is not None and not GiB <= disk_bytes <= MAX_DISK_BYTES:
        errors.add("disk", "from 1 GiB to 64 TiB")
    values["disk_bytes"] = disk_bytes or 0
    errors.raise_if_any()
    return values


def _taken_flavor(name: str) -> ConflictError:
    return ConflictError(f"A flavor named {name} already exists.", code="name_taken",
                         fields={"name": ["a flavor has this name"]})


def flavor_create(*, actor: Actor, name: object, vcpus: object, memory: object, disk: object,
                  description: object = "") -> FlavorResult:
    require_staff(actor, "can define flavors")
    values = flavor_validate(name=name, vcpus=vcpus, memory=memory, disk=disk, description=description)
    if Flavor.objects.filter(name=values["name"]).exists():
        raise _taken_flavor(values["name"])
    try:
        with _audit(actor, "flavor.create", f"flavor {values['name']}"), transaction.atomic():
            flavor = Flavor.objects.create(**values)
    except IntegrityError:
        raise _taken_flavor(values["name"]) from None
    return FlavorResult(flavor, f"Flavor {flavor.name} was added: {_sizes(flavor)}.")


def flavor_update(*, actor: Actor, flavor: Flavor, name: object, vcpus: object, memory: object, disk: object,
                  description: object = "") -> FlavorResult:
    """Change a flavor; VMs made with it keep their sizes (a flavor is read when a VM is made)."""
    require_staff(actor, "can change flavors")
    values = flavor_validate(name=name, vcpus=vcpus, memory=memory, disk=disk, description=description)
    if Flavor.objects.filter(name=values["name"]).exclude(pk=flavor.pk).exists():
        raise _taken_flavor(values["name"])
    try:
        with _audit(actor, "flavor.update", f"flavor {flavor.name}"), transaction.atomic():
            Flavor.objects.filter(pk=flavor.pk).update(**values)
    except IntegrityError:
        raise _taken_flavor(values["name"]) from None
    flavor.refresh_from_db()
    return FlavorResult(flavor, f"Flavor {flavor.name} now has {_sizes(flavor)}.")


def flavor_delete(*, actor: Actor, flavor: Flavor) -> FlavorResult:
    """Remove a flavor; refused while a template names it."""
    require_staff(actor, "can delete flavors")
    users = list(Template.objects.filter(flavor=flavor).values_list("name", flat=True)[:6])
    if users:
        said = ", ".join(users[:5]) + (" and more" if len(users) > 5 else "")
        raise ConflictError(f"Flavor {flavor.name} is used by the templates {said}: give them another flavor first.",
                            code="in_use")
    with _audit(actor, "flavor.delete", f"flavor {flavor.name}"):
        flavor.delete()
    return FlavorResult(flavor, f"Flavor {flavor.name} was deleted.")


def size_text(size: int) -> str:
    """A size in bytes as a person would type it, exactly: '2G', '512M', '1536B'."""
    for unit, factor in (("T", 1024**4), ("G", GiB), ("M", MiB)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def _sizes(flavor: Flavor) -> str:
    return (f"{flavor.vcpus} vCPU{'s' if flavor.vcpus != 1 else ''}, {hv.human(flavor.memory_mib * MiB)} memory, "
            f"{hv.human(flavor.disk_bytes)} disk")


# ------------------------------------------------------------------------------------------------ templates
@dataclass(frozen=True)
class TemplateResult:
    template: Template
    message: str


def template_may_change(actor: Actor, template: Template) -> bool:
    """Staff change every template; a person their own private ones (once staff published one, it is staff's)."""
    return is_staff(actor) or (template.owner_id is not None and template.owner_id == actor_id(actor)
                               and not template.public)


def template_check_change(actor: Actor, template: Template) -> None:
    """403 unless ``actor`` may change ``template`` (see :func:`template_may_change`)."""
    require_login(actor)
    if not template_may_change(actor, template):
        raise PermissionDeniedError("Only staff, or the person whose private template it is, may change it.")


def template_validate(*, actor: Actor, name: object, image: object = None, flavor: object = None,
                      os_variant_id: object = "", network: object = "", cloud_init: object = True,
                      clone_mode: object = Template.CloneMode.LINKED, description: object = "",
                      template: Template | None = None) -> dict[str, Any]:
    """The model's fields of a template (``template``: the one being changed; its image stays then)."""
    errors = FieldErrors()
    values: dict[str, Any] = {"name": name_field(name, errors),
                              "description": text_field(description, "description", 500, errors)}
    if template is None:
        key = image.pk if isinstance(image, IsoImage) else image
        found = None
        if key not in (None, "") and str(key).isdigit():
            found = IsoImage.objects.select_related("host").filter(pk=int(str(key)), kind=IsoImage.Kind.IMAGE).first()
        if found is None:
            errors.add("image", "choose a disk image of the image library")
        elif not found.complete:
            errors.add("image", f"{found.name} is not complete yet")
        elif not found.public and not is_staff(actor) and found.added_by_id != actor_id(actor):
            errors.add("image", "choose a disk image of the image library")
        values["image"] = found
    values["flavor"] = None
    if flavor not in (None, "", 0, "0"):
        try:
            values["flavor"] = flavor if isinstance(flavor, Flavor) else flavor_get(str(flavor))
        except NotFoundError:
            errors.add("flavor", "no such flavor")
    variant = text_field(os_variant_id, "os_variant", 64, errors)
    if variant and os_variant(variant) is None:
        errors.add("os_variant", f"unknown OS variant {variant[:60]!r}: pick one from the list, or 'generic'")
    values["os_variant"] = variant
    net = text_field(network, "network", 64, errors)
    if net:
        try:
            hv.validate_name(net, what="network name")
        except hv.InvalidRequest:
            errors.add("network", hv.NAME_RULE)
    values["network"] = net
    mode = str(clone_mode or "")
    if mode not in Template.CloneMode.values:
        errors.add("clone_mode", "linked or copy")
    values["clone_mode"] = mode
    values["cloud_init"] = flag_field(cloud_init)
    errors.raise_if_any()
    return values


def _taken_template(name: str) -> ConflictError:
    return ConflictError(f"A template named {name} already exists for this image.", code="name_taken",
                         fields={"name": ["taken for this image"]})


def template_create(*, actor: Actor, name: object, image: object, flavor: object = None,
                    os_variant_id: object = "", network: object = "", cloud_init: object = True,
                    clone_mode: object = Template.CloneMode.LINKED, description: object = "",
                    public: object = False) -> TemplateResult:
    """Staff: a template (no owner) from a complete disk image of the library; public = offered to every user."""
    require_staff(actor, "can make templates (make one of your own VM instead)")
    values = template_validate(actor=actor, name=name, image=image, flavor=flavor, os_variant_id=os_variant_id,
                               network=network, cloud_init=cloud_init, clone_mode=clone_mode,
                               description=description)
    if Template.objects.filter(image=values["image"], name=values["name"]).exists():
        raise _taken_template(values["name"])
    shown = flag_field(public)
    try:
        with _audit(actor, "template.create", f"template {values['name']}", values["image"].host.uri), \
                transaction.atomic():
            template = Template.objects.create(public=shown, owner=None, **values)
            if shown:
                _publish_image(template)
    except IntegrityError:
        raise _taken_template(values["name"]) from None
    return TemplateResult(template, f"Template {template.name} was added{' and published' if shown else ''}.")


def template_update(*, actor: Actor, template: Template, name: object, flavor: object = None,
                    os_variant_id: object = "", network: object = "", cloud_init: object = True,
                    clone_mode: object = Template.CloneMode.LINKED, description: object = "") -> TemplateResult:
    """Change a template's name, flavor and defaults (staff: any; a person: their own private one). Its image
    stays; publishing is :func:`template_publish`."""
    template_check_change(actor, template)
    values = template_validate(actor=actor, name=name, flavor=flavor, os_variant_id=os_variant_id, network=network,
                               cloud_init=cloud_init, clone_mode=clone_mode, description=description,
                               template=template)
    if Template.objects.filter(image_id=template.image_id, name=values["name"]).exclude(pk=template.pk).exists():
        raise _taken_template(values["name"])
    try:
        with _audit(actor, "template.update", f"template {template.name}", template.image.host.uri), \
                transaction.atomic():
            Template.objects.filter(pk=template.pk).update(**values)
    except IntegrityError:
        raise _taken_template(values["name"]) from None
    template.refresh_from_db()
    return TemplateResult(template, f"Template {template.name} was saved.")


def _publish_image(template: Template) -> None:
    """A public template's image is offered to everyone too (else users could not start from it)."""
    IsoImage.objects.filter(pk=template.image_id).update(public=True)


def template_publish(*, actor: Actor, template: Template, public: bool) -> TemplateResult:
    """Staff: offer the template to every user (and its image with it), or take it back (the image stays in the
    library as it is: other templates may use it)."""
    require_staff(actor, "can publish templates")
    if not template.image.complete:
        raise ConflictError(f"The image of {template.name} is not complete yet.", code="incomplete")
    action = "template.publish" if public else "template.unpublish"
    with _audit(actor, action, f"template {template.name}", template.image.host.uri), transaction.atomic():
        Template.objects.filter(pk=template.pk).update(public=public)
        if public:
            _publish_image(template)
    template.refresh_from_db()
    said = "published: every user may start VMs from it" if public else "no longer public"
    return TemplateResult(template, f"Template {template.name} is {said}.")


def _image_goes_with(template: Template) -> bool:
    """Whether deleting ``template`` deletes its image too: a private image made for it (from its owner's VM, in
    the image pool) that no other template uses."""
    image = template.image
    return (template.owner_id is not None and not image.public and image.added_by_id == template.owner_id
            and not image.registered and image.pool == settings.KVMWEB_IMAGE_POOL
            and not Template.objects.filter(image=image).exclude(pk=template.pk).exists())


def template_delete(*, actor: Actor, template: Template) -> TemplateResult:
    """Remove a template (staff: any; a person: their own private one). A private image made from a VM for it goes
    with it — refused while a VM's disk is that image or is linked to it (made from the template in linked mode)."""
    template_check_change(actor, template)
    image = template.image
    goes = _image_goes_with(template)
    if goes and not image.complete:
        job = Job.objects.filter(kind=FROM_VM, params__template_id=template.pk).order_by("-pk").first()
        if job is not None and not job.finished_state:
            raise ConflictError(f"Template {template.name} is still being made (job #{job.pk}): cancel that job.",
                                code="in_progress")
    if goes:
        users = image_in_use(image, actor=actor)
        if users:
            raise ConflictError(f"The image of template {template.name} is in use by {users}: delete those VMs "
                                "first (a linked clone reads its unchanged data from the image).", code="in_use")
    with _audit(actor, "template.delete", f"template {template.name}", image.host.uri) as notes:
        template.delete()
        if goes:
            try:
                hv.pool_lookup(host_connection(image.host), image.pool).volume(image.name).delete()
            except hv.NotFound:
                pass
            VolumeOwner.objects.filter(host_id=image.host_id, pool=image.pool, name=image.name).delete()
            image.delete()
            notes.append(f"deleted its image {image.path}")
    said = f" with its image {image.name}" if goes else ""
    return TemplateResult(template, f"Template {template.name} was deleted{said}.")


# ------------------------------------------------------------------------------------------------ from a VM
@dataclass(frozen=True)
class TemplateJobResult:
    template: Template
    job: Job

    @property
    def message(self) -> str:
        return (f"Template {self.template.name} is being made from a copy of the VM's disk (job "
                f"#{self.job.pk}): follow its progress.")


def _source_disk(conn: hv.Connection, doc: hv.DomainDocument) -> hv.Volume:
    """The VM's first writable disk, as a volume of a pool."""
    for disk in (d.info() for d in doc.disks):
        source = disk.own_source
        if source is None:
            continue
        volume = hv.volume_by_path(conn, source)
        if volume is None:
            raise ValidationError(f"Disk {disk.target} ({source}) is not in a storage pool; the portal can only "
                                  "copy disks that live in pools.")
        return volume
    raise ConflictError(f"{doc.name} has no disk to make a template of.", code="no_disk")


def template_from_vm(*, actor: Actor, vm: VirtualMachine, name: object, description: object = "") -> TemplateJobResult:
    """Queue the copy of ``vm``'s first writable disk into a private template of ``actor``'s: the VM must be shut
    off; the copy counts in their disk quota (its virtual size)."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    errors = FieldErrors()
    template_name = name_field(name, errors)
    text = text_field(description, "description", 500, errors)
    volume_name = f"{template_name}.qcow2"
    if "name" not in errors.fields:
        try:
            hv.validate_volume_name(volume_name)
        except hv.InvalidRequest:
            errors.add("name", "at most 57 characters (the image file is named <name>.qcow2)")
    errors.raise_if_any()
    host = vm.host
    taken = (IsoImage.objects.filter(host=host, name=volume_name).exists()
             or Template.objects.filter(name=template_name).filter(owner_id=actor_id(actor)).exists())
    if taken:
        raise ConflictError(f"The name {template_name} is taken: you have a template of that name, or {host} has an "
                            f"image {volume_name}.", code="name_taken",
                            fields={"name": ["taken"]})
    state = dom.state()
    if state.is_active:
        raise ConflictError(f"{vm.name} is {state.label}: shut it off first (a disk copied while the guest writes to "
                            "it would be inconsistent).", code="vm_running")
    doc = dom.definition()
    conn = host_connection(host)
    source = _source_disk(conn, doc)
    info = source.info(pool=source.pool_name())
    try:  # made by the job when missing
        pool: hv.Pool | None = hv.pool_lookup(conn, settings.KVMWEB_IMAGE_POOL)
    except hv.PoolNotFound:
        pool = None
    if pool is not None and pool.is_active():
        if pool.has_volume(volume_name):
            raise ConflictError(f"The image pool on {host} already has a file {volume_name}.", code="name_taken",
                                fields={"name": ["taken"]})
        check_space(pool, info.allocation, f"Copying {info.name} ({hv.human(info.allocation)})")
    path = pool.volume_path(volume_name) if pool is not None else hv.path_inside(settings.KVMWEB_IMAGE_DIR,
                                                                                  volume_name)
    check_quota(actor, disk_bytes=info.capacity, fields={"disk": "name"})
    params: dict[str, Any] = {
        "host_id": host.pk, "uuid": str(vm.uuid), "name": template_name, "volume": volume_name,
        "source_pool": info.pool, "source": info.name, "allocation": info.allocation,
        "quota": quota_reservation(disk_bytes=info.capacity),
    }
    with vm_audited(actor, "vm.template", vm) as notes, \
            quota_held(actor, disk_bytes=info.capacity, fields={"disk": "name"}):
        try:
            with transaction.atomic():
                image = IsoImage.objects.create(
                    kind=IsoImage.Kind.IMAGE, host=host, name=volume_name, path=path, pool=settings.KVMWEB_IMAGE_POOL,
                    format="qcow2", virtual_size=info.capacity, public=False,
                    added_by=actor if actor.is_authenticated else None, kernel=doc.kernel or "",
                    initrd=doc.initrd or "", cmdline=doc.cmdline or "")
                template = Template.objects.create(
                    name=template_name, description=text, image=image, flavor=None, os_variant=GENERIC,
                    cloud_init=True, clone_mode=Template.CloneMode.LINKED, public=False, owner=actor)
        except IntegrityError:
            raise ConflictError(f"An image named {volume_name} already exists on {host}.", code="name_taken",
                                fields={"name": ["taken"]}) from None
        params.update(image_id=image.pk, template_id=template.pk)
        job = job_create(
            actor=actor, kind=FROM_VM, title=f"Make template {template_name} of {vm.name}", target_type="vm",
            target=str(vm.uuid), host=host, params=params,
            cleanup=[undo_record("provisioning.forget_template", f"removed the unfinished template {template_name}",
                                 template_id=template.pk, image_id=image.pk)],
        )
        notes.append(f"template {template_name}: job {job.pk}")
    return TemplateJobResult(template=template, job=job)


def template_from_vm_run(ctx: JobContext) -> dict[str, Any]:
    """The ``template.from_vm`` job (in the Celery worker): copy the disk into the image pool (progress from the
    new volume's allocation), then complete the image. Each step records its undo first."""
    p = ctx.params
    vm_recheck(actor_id=ctx.job.actor_id, uuid=p["uuid"], action=VmAction.MANAGE, what="make a template of")
    host = Host.objects.get(pk=p["host_id"])
    conn = host_connection(host)
    dom = hv.domain_lookup(conn, p["uuid"])
    state = dom.state()
    if state.is_active:
        raise ConflictError(f"{dom.name} is {state.label}: it was started after the request; shut it off first.")
    ctx.progress(2, f"Making template {p['name']} of {dom.name} on {host}.")
    source = hv.pool_lookup(conn, p["source_pool"]).volume(p["source"])
    pool = image_pool(host)
    if pool.has_volume(p["volume"]):
        raise ConflictError(f"The image pool got a file named {p['volume']} after the request was checked; it is not "
                            "ours to touch.")
    undo = {"host_id": host.pk, "pool": pool.name, "name": p["volume"]}
    ctx.undo("storage.delete_volume", f"deleted the copy {pool.name}/{p['volume']}", **undo)
    ctx.log(f"Copying {source.path} → {pool.volume_path(p['volume'])} ({hv.human(int(p['allocation']))}).")
    spec = hv.VolumeSpec(name=p["volume"], capacity=source.spec().capacity, format="qcow2")
    try:
        with CopyWatcher(ctx, pool, p["volume"], 0, int(p["allocation"])):
            volume = pool.clone_volume(source, spec)
    except hv.AlreadyExists:
        ctx.forget_undo("storage.delete_volume", **undo)  # someone else's file: never delete it
        raise
    volume_owner_record(host=host, pool=pool.name, name=p["volume"], owner_id=ctx.job.actor_id)
    ctx.check_cancelled()
    made = volume.spec()
    with transaction.atomic():
        done = IsoImage.objects.filter(pk=p["image_id"], complete=False).update(
            path=volume.path, size=made.physical or made.allocation, uploaded=made.physical or made.allocation,
            format=made.format, virtual_size=made.capacity, complete=True)
        if done:
            ctx.keep()  # the template exists now: nothing of it may be undone any more
    if not done:
        raise ConflictError(f"Template {p['name']} was deleted while its image was being made.")
    ctx.progress(100, f"Template {p['name']} is ready ({hv.human(made.capacity)} disk, qcow2).")
    return {"template_id": p["template_id"], "image_id": p["image_id"], "path": volume.path}
