from django.urls import path

from . import views

app_name = "storage"

POOL = "hosts/<int:host_id>/pools/<str:name>/"
VOLUME = POOL + "volumes/<str:volume>/"
VM = "vms/<uuid:uuid>/"

urlpatterns = [
    path("", views.storage_index_view, name="index"),
    path("hosts/<int:host_id>/pools/define/", views.pool_define_view, name="pool-define"),
    path(POOL, views.pool_detail_view, name="pool"),
    path(POOL + "delete/", views.pool_delete_view, name="pool-delete"),
    path(POOL + "access/", views.pool_access_view, name="pool-access"),
    *[
        path(POOL + f"{action}/", views.pool_action_view, {"action": action}, name=f"pool-{action}")
        for action in views.POOL_ACTIONS
    ],
    path(POOL + "volumes/create/", views.volume_create_view, name="volume-create"),
    path(VOLUME + "resize/", views.volume_resize_view, name="volume-resize"),
    path(VOLUME + "delete/", views.volume_delete_view, name="volume-delete"),
    path(VOLUME + "download/", views.volume_download_view, name="volume-download"),
    path(VM + "disks/", views.vm_disks_view, name="vm-disks"),
    path(VM + "disks/attach/", views.vm_disk_attach_view, name="vm-disk-attach"),
    path(VM + "disks/detach/", views.vm_disk_detach_view, name="vm-disk-detach"),
    path(VM + "disks/resize/", views.vm_disk_resize_view, name="vm-disk-resize"),
    path(VM + "disks/bus/", views.vm_disk_bus_view, name="vm-disk-bus"),
    path(VM + "cdrom/", views.vm_cdrom_view, name="vm-cdrom"),
    path(VM + "disks/cdrom/add/", views.vm_cdrom_add_view, name="vm-cdrom-add"),
    path(VM + "disks/cdrom/remove/", views.vm_cdrom_remove_view, name="vm-cdrom-remove"),
    path(VM + "boot-order/", views.vm_boot_order_view, name="vm-boot-order"),
    path(VM + "clone/", views.vm_clone_view, name="vm-clone"),
]
