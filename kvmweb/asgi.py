import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmweb.settings")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from kvmweb.core.asgi import application as django_application  # noqa: E402

# Django's handler, with the raw bodies of upload pieces streamed to the view instead of spooled first.
django_asgi_app = django_application()

from kvmweb.console.routing import websocket_urlpatterns as console_ws  # noqa: E402
from kvmweb.events.routing import websocket_urlpatterns as events_ws  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Same-origin websockets only (Origin checked against ALLOWED_HOSTS), session-authenticated.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([*events_ws, *console_ws]))),
    }
)

import kvmweb.urls  # noqa: E402,F401 - every page's and API's module, loaded now to be frozen below

# What is loaded by now lives as long as the process: keep it out of the garbage collector's passes. A request that
# allocates many objects (the VM list of a host with 10,000 VMs) triggers full collections, and each would walk
# every object of Django and the libraries first (more than a third of that request's time, measured).
gc.freeze()
