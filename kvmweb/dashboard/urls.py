"""The landing page and its parts. Included without a namespace at the site's root: the page keeps the name
``home`` every template links to."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard_view, name="home"),
    *[path(f"dashboard/part/{part}/", views.dashboard_part_view, {"part": part}, name=f"dashboard-part-{part}")
      for part in views.PARTS],
]
