"""Pages of the fleet app (under /fleet/)."""
from .views import urls

app_name = "fleet"
urlpatterns = urls
