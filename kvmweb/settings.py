"""Django settings. Every value comes from the environment, with defaults for the embedded single-machine setup
(SQLite, a local Redis, the local libvirt). See README.md, "Configuration"."""
from __future__ import annotations

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("KVMWEB_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    if os.environ.get("KVMWEB_SECRET_KEY"):
        return os.environ["KVMWEB_SECRET_KEY"]
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _database(url: str) -> dict[str, object]:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path) if parsed.path not in ("", "/") else str(VAR_DIR / "db.sqlite3")
        # Several processes write (web, worker, event listener): transactions take the write lock when they begin
        # (IMMEDIATE), so a second writer waits up to `timeout` seconds instead of failing at once with "database is
        # locked" when it tries to upgrade a read lock; WAL lets readers go on while one process writes.
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path, "OPTIONS": {
            "timeout": 20, "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}}
    if parsed.scheme in ("postgres", "postgresql", "pgsql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parsed.path.lstrip("/"),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 60,
        }
    raise ValueError(f"KVMWEB_DATABASE_URL: unsupported scheme {parsed.scheme!r} (use sqlite:// or postgres://)")


# Under pytest every run gets its own database file, Celery queue and channel-layer prefix, so that parallel runs
# (and the server processes a run starts, which inherit these variables) never see each other's work.
TESTING = "pytest" in sys.modules or env_bool("KVMWEB_TESTING", False)
if TESTING:
    os.environ.setdefault("KVMWEB_TEST_RUN", f"{os.getpid()}")
    os.environ.setdefault("KVMWEB_CELERY_QUEUE", f"kvmweb-test-{os.environ['KVMWEB_TEST_RUN']}")
    os.environ.setdefault("KVMWEB_CHANNEL_PREFIX", f"kvmweb-test-{os.environ['KVMWEB_TEST_RUN']}:")
    os.environ.setdefault("KVMWEB_STATS_PREFIX", f"kvmweb-test-{os.environ['KVMWEB_TEST_RUN']}:stats:")

SECRET_KEY = _secret_key()
DEBUG = env_bool("KVMWEB_DEBUG", False)
ALLOWED_HOSTS = env_list("KVMWEB_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("KVMWEB_CSRF_TRUSTED_ORIGINS", "")
KVMWEB_BEHIND_TLS_PROXY = env_bool("KVMWEB_BEHIND_TLS_PROXY", False)
if KVMWEB_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "axes",  # failed-login lockout (settings KVMWEB_LOGIN_*)
    "django_otp",  # the optional TOTP second factor (kvmweb.accounts.twofactor)
    "django_otp.plugins.otp_totp",
    "channels",
    # The portal's apps, lowest layer first (each imports only from those above it; see docs/architecture.md).
    "kvmweb.core",
    "kvmweb.audit",
    "kvmweb.access",
    "kvmweb.hosts",
    "kvmweb.events",
    "kvmweb.monitoring",
    "kvmweb.jobs",
    "kvmweb.accounts",
    "kvmweb.machines",
    "kvmweb.media",
    "kvmweb.storage",
    "kvmweb.networks",
    "kvmweb.console",
    "kvmweb.protection",
    "kvmweb.fleet",
    "kvmweb.provisioning",
    "kvmweb.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "kvmweb.core.csp.PortalCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "kvmweb.core.middleware.HypervisorErrorMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout page
]

ROOT_URLCONF = "kvmweb.urls"
ASGI_APPLICATION = "kvmweb.asgi.application"
WSGI_APPLICATION = "kvmweb.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

DATABASES = {"default": _database(os.environ.get("KVMWEB_DATABASE_URL", "sqlite://"))}
if TESTING and DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory: the servers a test starts (daphne, Celery) must see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.environ['KVMWEB_TEST_RUN']}.sqlite3")}
elif TESTING:  # PostgreSQL: a test database of this run's own, so that parallel runs never share one
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.environ['KVMWEB_TEST_RUN']}"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if TESTING:  # Django's advice for test speed: the tests make thousands of users (production keeps PBKDF2)
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"  # the dashboard
LOGOUT_REDIRECT_URL = "login"
# Login hardening (kvmweb.accounts): after KVMWEB_LOGIN_FAILURES failed logins for one (user name, client address)
# that pair is locked out for KVMWEB_LOGIN_COOLOFF_MINUTES after the last failure (django-axes, counted in the
# database). Only password logins count: API tokens never go through Django's authenticate().
KVMWEB_LOGIN_FAILURES = int(os.environ.get("KVMWEB_LOGIN_FAILURES", "5"))
KVMWEB_LOGIN_COOLOFF_MINUTES = int(os.environ.get("KVMWEB_LOGIN_COOLOFF_MINUTES", "15"))
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = KVMWEB_LOGIN_FAILURES
AXES_COOLOFF_TIME = timedelta(minutes=KVMWEB_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the retry time the lockout page names does not move
AXES_LOCKOUT_CALLABLE = "kvmweb.accounts.views.locked_out"
AXES_CLIENT_IP_CALLABLE = "kvmweb.accounts.lockout.client_ip"
AXES_DISABLE_ACCESS_LOG = True  # failures are kept (they are the lockout); successful logins are not logged
AXES_VERBOSE = False
# Two-factor (TOTP, django-otp): secrets stay out of the admin; authenticator apps show "kvmweb".
OTP_TOTP_ISSUER = os.environ.get("KVMWEB_TOTP_ISSUER", "kvmweb")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# A login lasts KVMWEB_SESSION_HOURS (then the person logs in again).
KVMWEB_SESSION_HOURS = float(os.environ.get("KVMWEB_SESSION_HOURS", "12"))
SESSION_COOKIE_AGE = max(60, int(KVMWEB_SESSION_HOURS * 3600))

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("KVMWEB_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
NODE_MODULES = BASE_DIR / "node_modules"
# Front-end libraries come from npm (package-lock.json), never copied into the repository.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/pico", NODE_MODULES / "@picocss" / "pico" / "css"),
    ("vendor/swagger-ui", NODE_MODULES / "swagger-ui-dist"),
    ("vendor/novnc", NODE_MODULES / "@novnc" / "novnc"),
    ("vendor/xterm", NODE_MODULES / "@xterm" / "xterm"),
    ("vendor/xterm-addon-fit", NODE_MODULES / "@xterm" / "addon-fit"),
    ("vendor/chartjs", NODE_MODULES / "chart.js" / "dist"),
]
# Production serves the collected files (scripts/run.sh runs collectstatic); scanning the finders too would keep a
# second index of every file in the web process.
WHITENOISE_USE_FINDERS = DEBUG or TESTING
# Request bodies above this go to a temporary file before the view reads them (ISO upload pieces): the web process
# holds at most this much of a body in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

REDIS_URL = os.environ.get("KVMWEB_REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("KVMWEB_CHANNEL_PREFIX", "kvmweb:")},
    },
}
CELERY_BROKER_URL = os.environ.get("KVMWEB_CELERY_BROKER_URL", REDIS_URL)
# Monitoring (docs/monitoring.md): one sample of every VM and host each KVMWEB_STATS_INTERVAL seconds, kept in Redis
# under KVMWEB_STATS_PREFIX (bounded round-robin history).
KVMWEB_STATS_INTERVAL = float(os.environ.get("KVMWEB_STATS_INTERVAL", "5"))
KVMWEB_STATS_PREFIX = os.environ.get("KVMWEB_STATS_PREFIX", "kvmweb:stats:")
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("KVMWEB_CELERY_QUEUE", "kvmweb")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("KVMWEB_CELERY_EAGER", False)
# `manage.py workers` (kvmweb.jobs.workers): jobs at a time of the default queue's worker and of each host's worker
# (a job that concerns a host goes to that host's own queue, KVMWEB_CELERY_QUEUE + ".host-<id>").
KVMWEB_WORKER_CONCURRENCY = int(os.environ.get("KVMWEB_WORKER_CONCURRENCY", "2"))
KVMWEB_HOST_WORKER_CONCURRENCY = int(os.environ.get("KVMWEB_HOST_WORKER_CONCURRENCY", "2"))
# Periodic work, sent by Celery beat (the worker runs it embedded: `celery worker -B`): every KVMWEB_SWEEP_SECONDS,
# uploads quiet for KVMWEB_STALE_UPLOAD_SECONDS are failed and their unfinished files removed.
KVMWEB_SWEEP_SECONDS = int(os.environ.get("KVMWEB_SWEEP_SECONDS", "600"))
KVMWEB_STALE_UPLOAD_SECONDS = int(os.environ.get("KVMWEB_STALE_UPLOAD_SECONDS", "3600"))
CELERY_BEAT_SCHEDULE = {
    "sweep-abandoned-uploads": {"task": "kvmweb.jobs.sweep_stale_web", "schedule": float(KVMWEB_SWEEP_SECONDS),
                                "options": {"expires": float(KVMWEB_SWEEP_SECONDS)}},
}

# libvirt hosts registered by `manage.py bootstrap` (comma-separated URIs).
KVMWEB_LIBVIRT_URIS = env_list("KVMWEB_LIBVIRT_URIS", "qemu:///system")
# Remote hosts (docs/hosts.md): the portal's own SSH identity (id_ed25519, id_ed25519.pub) and the known_hosts that
# pins each host's key live here, never in ~/.ssh. qemu+tcp:// (no authentication, no encryption) is refused unless
# KVMWEB_ALLOW_INSECURE_HOSTS=1 (tests, or a network nobody else reaches).
KVMWEB_SSH_DIR = os.environ.get("KVMWEB_SSH_DIR", str(VAR_DIR / "ssh"))
KVMWEB_ALLOW_INSECURE_HOSTS = env_bool("KVMWEB_ALLOW_INSECURE_HOSTS", False)
# Force the domain type of every host ("kvm" or "qemu"); empty = detect from each host's capabilities.
KVMWEB_DOMAIN_TYPE = os.environ.get("KVMWEB_DOMAIN_TYPE", "")
KVMWEB_PAGE_SIZE = int(os.environ.get("KVMWEB_PAGE_SIZE", "50"))
# The VM list's screenshot thumbnails of running VMs: at most one libvirt screenshot per VM in this many seconds.
KVMWEB_THUMBNAIL_SECONDS = int(os.environ.get("KVMWEB_THUMBNAIL_SECONDS", "30"))
# The VM page's guest information (guest agent or DHCP leases): read at most once per VM in this many seconds;
# KVMWEB_GUEST_AGENT_TIMEOUT: how long to wait for a guest agent that is connected but does not answer.
KVMWEB_GUEST_INFO_SECONDS = int(os.environ.get("KVMWEB_GUEST_INFO_SECONDS", "30"))
KVMWEB_GUEST_AGENT_TIMEOUT = int(os.environ.get("KVMWEB_GUEST_AGENT_TIMEOUT", "2"))
# Default per-user quotas (users without a Quota row; staff are never limited): empty = no limit.
KVMWEB_QUOTA_VMS = os.environ.get("KVMWEB_QUOTA_VMS", "")
KVMWEB_QUOTA_VCPUS = os.environ.get("KVMWEB_QUOTA_VCPUS", "")
KVMWEB_QUOTA_MEMORY_MIB = os.environ.get("KVMWEB_QUOTA_MEMORY_MIB", "")
KVMWEB_QUOTA_DISK_GIB = os.environ.get("KVMWEB_QUOTA_DISK_GIB", "")
# ISO library (kvmweb.media): the directory pool the portal creates on each host for uploaded install media.
KVMWEB_ISO_POOL = os.environ.get("KVMWEB_ISO_POOL", "kvmweb-isos")
KVMWEB_ISO_DIR = os.environ.get("KVMWEB_ISO_DIR", "/var/lib/kvmweb/isos")
KVMWEB_ISO_UPLOAD_BY_USERS = env_bool("KVMWEB_ISO_UPLOAD_BY_USERS", False)  # else staff only
# Image library (kvmweb.media, kind "image"): the pool for disk images templates start from (uploads and copies).
KVMWEB_IMAGE_POOL = os.environ.get("KVMWEB_IMAGE_POOL", "kvmweb-images")
KVMWEB_IMAGE_DIR = os.environ.get("KVMWEB_IMAGE_DIR", "/var/lib/kvmweb/images")
# Backups (kvmweb.protection): the directory pool the portal creates on each host for backup volumes, and how many
# complete backups of a VM are kept when no retention rule of its owner or its pool says otherwise.
KVMWEB_BACKUP_POOL = os.environ.get("KVMWEB_BACKUP_POOL", "kvmweb-backups")
KVMWEB_BACKUP_DIR = os.environ.get("KVMWEB_BACKUP_DIR", "/var/lib/kvmweb/backups")
KVMWEB_BACKUP_KEEP = int(os.environ.get("KVMWEB_BACKUP_KEEP", "7"))
# cloud-init: the largest extra user-data (#cloud-config) a person may give, in bytes.
KVMWEB_USER_DATA_MAX = int(os.environ.get("KVMWEB_USER_DATA_MAX", str(16 * 1024)))
# Newcomer defaults (`manage.py bootstrap`): each host gets libvirt's conventional directory pool, as virt-install and
# virt-manager create it, opened to every user unless KVMWEB_DEFAULT_POOL_OPEN=0.
KVMWEB_DEFAULT_POOL = os.environ.get("KVMWEB_DEFAULT_POOL", "default")
KVMWEB_DEFAULT_POOL_DIR = os.environ.get("KVMWEB_DEFAULT_POOL_DIR", "/var/lib/libvirt/images")
KVMWEB_DEFAULT_POOL_OPEN = env_bool("KVMWEB_DEFAULT_POOL_OPEN", True)
# "Shut down" with a deadline: seconds the guest gets to power off after the ACPI request before it is forced off.
# Many hosts (kvmweb.fleet, docs/migration.md): placement counts the vCPUs and memory of a host's active guests
# against its CPUs x KVMWEB_CPU_OVERCOMMIT and memory x KVMWEB_MEMORY_OVERCOMMIT. Owners and managers may move
# their VMs between hosts when KVMWEB_MIGRATION_BY_OWNERS=1 (else staff only). A host's migration address is the
# host part of its URI, or KVMWEB_MIGRATION_ADDRESSES ("hostname=address,..." by the portal's host name; needed
# for a local URI such as qemu:///system). KVMWEB_MIGRATION_UNSAFE=1 passes VIR_MIGRATE_UNSAFE when disks stay
# where they are (a folder both hosts see that libvirt does not know as shared: tests on one machine).
# KVMWEB_MIGRATION_BANDWIDTH_MIB caps a live migration's MiB/s (virsh migrate --bandwidth; 0: no cap).
KVMWEB_CPU_OVERCOMMIT = float(os.environ.get("KVMWEB_CPU_OVERCOMMIT", "4.0"))
KVMWEB_MEMORY_OVERCOMMIT = float(os.environ.get("KVMWEB_MEMORY_OVERCOMMIT", "1.0"))
KVMWEB_MIGRATION_BY_OWNERS = env_bool("KVMWEB_MIGRATION_BY_OWNERS", False)
KVMWEB_MIGRATION_ADDRESSES = dict(item.split("=", 1) for item in env_list("KVMWEB_MIGRATION_ADDRESSES", "")
                                  if "=" in item)
KVMWEB_MIGRATION_UNSAFE = env_bool("KVMWEB_MIGRATION_UNSAFE", False)
KVMWEB_MIGRATION_BANDWIDTH_MIB = int(os.environ.get("KVMWEB_MIGRATION_BANDWIDTH_MIB", "0"))

KVMWEB_SHUTDOWN_TIMEOUT = int(os.environ.get("KVMWEB_SHUTDOWN_TIMEOUT", "120"))
# Before queueing a job the broker must answer within this many seconds, or the action is refused (503).
KVMWEB_QUEUE_CHECK_TIMEOUT = float(os.environ.get("KVMWEB_QUEUE_CHECK_TIMEOUT", "1"))
# Console proxy (manage.py console_proxy): where it listens, and the websocket URL pages use to reach it.
# Empty public URL = ws://<the page's host>:<port>; behind a TLS reverse proxy set e.g. "wss://portal.example/console".
KVMWEB_CONSOLE_BIND = os.environ.get("KVMWEB_CONSOLE_BIND", "127.0.0.1")
KVMWEB_CONSOLE_PORT = int(os.environ.get("KVMWEB_CONSOLE_PORT", "6080"))
KVMWEB_CONSOLE_PUBLIC_URL = os.environ.get("KVMWEB_CONSOLE_PUBLIC_URL", "")
KVMWEB_CONSOLE_TOKEN_TTL = min(int(os.environ.get("KVMWEB_CONSOLE_TOKEN_TTL", "30")), 30)  # seconds, at most 30

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # first, so that a request without credentials is a 401 naming the scheme (WWW-Authenticate: Token)
        "kvmweb.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "kvmweb.core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "kvmweb API",
    "DESCRIPTION": "Self-service KVM virtual machines on libvirt.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "/" + STATIC_URL + "vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": "/" + STATIC_URL + "favicon.svg",
}

# Content-Security-Policy (django-csp; kvmweb.core.csp adds the request's websocket sources to connect-src):
# scripts, styles and connections only from the portal itself; no inline script or event handler, no eval (pages
# declare behaviour with data-* attributes that static/js/*.js handle: data-confirm, data-autosubmit...).
# The policy is enforced. KVMWEB_CSP_REPORT_ONLY=1 sends it as Content-Security-Policy-Report-Only instead: browsers
# report violations in their console and block nothing (to try a change of the policy).
KVMWEB_CSP_REPORT_ONLY = env_bool("KVMWEB_CSP_REPORT_ONLY", False)
_CSP = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],  # Pico CSS draws its form icons as data: SVG
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
if KVMWEB_CSP_REPORT_ONLY:
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
    CONTENT_SECURITY_POLICY = None
else:
    CONTENT_SECURITY_POLICY = _CSP
    CONTENT_SECURITY_POLICY_REPORT_ONLY = None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("KVMWEB_LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
