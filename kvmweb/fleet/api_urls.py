"""API of the fleet app (under /api/v1/)."""
from .api import urls

urlpatterns = urls
