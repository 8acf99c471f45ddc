from django.urls import path

from . import catalog_api

# POST /api/v1/vms/ (create) is joined with the machines app's list in the project's urls.py.
urlpatterns = [
    path("flavors/", catalog_api.FlavorListApi.as_view(), name="flavor-list"),
    path("flavors/<int:pk>/", catalog_api.FlavorDetailApi.as_view(), name="flavor-detail"),
    path("templates/", catalog_api.TemplateListApi.as_view(), name="template-list"),
    path("templates/<int:pk>/", catalog_api.TemplateDetailApi.as_view(), name="template-detail"),
    path("vms/<uuid:uuid>/template/", catalog_api.VmTemplateApi.as_view(), name="vm-template"),
]
