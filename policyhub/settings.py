"""PolicyHub settings, read from the environment.

With no variable set the *embedded default* applies: SQLite and a filesystem Celery broker under ``var/``,
so the app runs with no server installed. ``DATABASE_URL`` switches to PostgreSQL, ``CELERY_BROKER_URL``
to Redis (or any broker kombu speaks). ``DEBUG`` is off unless set (``bin/run`` and ``bin/test`` set it); with it
off, a ``SECRET_KEY`` is required and HTTPS is enforced (HSTS, redirect, secure cookies), each switchable here.
"""

import json
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("POLICYHUB_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str | None:
    """A setting from ``NAME`` or, for secrets mounted as files, from the file named by ``NAME_FILE``."""
    if name in os.environ:
        return os.environ[name]
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return default


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off).")


def env_list(name: str, default: list[str]) -> list[str]:
    value = env(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value is not None else default


def env_int(name: str, default: int) -> int:
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """``X-Forwarded-Proto:https`` → Django's ``("HTTP_X_FORWARDED_PROTO", "https")``; unset → None."""
    value = env(name)
    if not value:
        return None
    header, sep, expected = (part.strip() for part in value.partition(":"))
    if not sep or not header or not expected:
        raise ImproperlyConfigured(
            f"{name}={value!r} must be HEADER:VALUE, e.g. X-Forwarded-Proto:https (the header the proxy sets on "
            "requests that reached it over HTTPS)."
        )
    return "HTTP_" + header.upper().replace("-", "_"), expected


def _dev_secret_key() -> str:
    """A random key kept under var/ for DEBUG runs: never a secret shared by every install."""
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off: set SECRET_KEY (or SECRET_KEY_FILE) in the environment."
        )
    SECRET_KEY = _dev_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "policyhub",
    "labeling",
    "exports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "policyhub.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files from STATIC_ROOT, straight after security
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lock-out page
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "policyhub.urls"
WSGI_APPLICATION = "policyhub.wsgi.application"

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
                "policyhub.roles.roles_context",
            ],
        },
    },
]

DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "policyhub.sqlite3",
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "policy_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT") or VAR_DIR / "static")  # filled by `manage.py collectstatic` (bin/serve)
# WhiteNoise serves STATIC_ROOT. Without DEBUG, file names carry a content hash (cached for ever, gzip/brotli
# copies made by collectstatic); with DEBUG, plain names straight from static/ with no collectstatic needed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Fixed when the settings load (pytest-django turns DEBUG off later, while tests still read static/ directly).
WHITENOISE_AUTOREFRESH = WHITENOISE_USE_FINDERS = DEBUG
# Uploads waiting for a worker (imports). Web and workers must share it (a volume, or one machine).
MEDIA_ROOT = Path(env("MEDIA_ROOT") or VAR_DIR / "media")
#: Built dataset exports (one folder per export; immutable once built). With STORAGE_BACKEND=s3, only the local
#: folder a worker builds an export in before uploading it.
EXPORTS_ROOT = Path(env("POLICYHUB_EXPORTS_DIR") or MEDIA_ROOT / "exports")
MEDIA_URL = "media/"  # never served: uploads are read by workers only


def s3_storages(
    *,
    bucket: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    prefix: str = "",
    addressing_style: str | None = None,
) -> dict:
    """``STORAGES`` entries for an S3-compatible bucket (django-storages): ``default`` (uploads, under
    ``<prefix>/imports/``) and ``exports`` (under ``<prefix>/exports/``). Without keys, boto3 finds credentials
    itself (instance or task role, ``~/.aws``)."""
    options = {
        "bucket_name": bucket, "endpoint_url": endpoint_url or None, "region_name": region or None,
        "access_key": access_key or None, "secret_key": secret_key or None, "addressing_style": addressing_style,
        "signature_version": "s3v4", "default_acl": None, "querystring_auth": True,
        "file_overwrite": False,  # a name taken already gets another: an object is never written over
        "max_memory_size": 16 * 1024 * 1024,  # a worker reads an upload into a temporary file, not into memory
    }  # fmt: skip
    prefix = prefix.strip("/")
    backend = "storages.backends.s3.S3Storage"
    return {
        "default": {"BACKEND": backend, "OPTIONS": {**options, "location": prefix}},
        "exports": {"BACKEND": backend, "OPTIONS": {**options, "location": f"{prefix}/exports".lstrip("/")}},
    }


# Where uploads and exports live: ``filesystem`` (MEDIA_ROOT, EXPORTS_ROOT; web and workers share the folders) or
# ``s3`` (an S3-compatible bucket: AWS S3, MinIO, Ceph, R2, …; web and workers anywhere).
STORAGE_BACKEND = (env("STORAGE_BACKEND") or "filesystem").strip().lower()
if STORAGE_BACKEND == "s3":
    if not env("AWS_STORAGE_BUCKET_NAME"):
        raise ImproperlyConfigured(
            "STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME (the bucket for uploads and exports)."
        )
    STORAGES.update(
        s3_storages(
            bucket=env("AWS_STORAGE_BUCKET_NAME"), endpoint_url=env("AWS_S3_ENDPOINT_URL"),
            region=env("AWS_S3_REGION_NAME") or env("AWS_DEFAULT_REGION"), access_key=env("AWS_ACCESS_KEY_ID"),
            secret_key=env("AWS_SECRET_ACCESS_KEY"), prefix=env("AWS_LOCATION", "") or "",
            addressing_style=env("AWS_S3_ADDRESSING_STYLE") or None,
        )
    )  # fmt: skip
elif STORAGE_BACKEND != "filesystem":
    raise ImproperlyConfigured(f"STORAGE_BACKEND={STORAGE_BACKEND!r}: use filesystem (the default) or s3.")
# Export downloads: ``stream`` (through the app, with ranges) or ``redirect`` (s3 only: a 302 to a presigned URL of
# the object, valid EXPORT_DOWNLOAD_URL_SECONDS, so the bytes go from the bucket straight to the client).
EXPORT_DOWNLOADS = (env("EXPORT_DOWNLOADS") or "stream").strip().lower()
if EXPORT_DOWNLOADS not in ("stream", "redirect"):
    raise ImproperlyConfigured(f"EXPORT_DOWNLOADS={EXPORT_DOWNLOADS!r}: use stream (the default) or redirect.")
if EXPORT_DOWNLOADS == "redirect" and STORAGE_BACKEND != "s3":
    raise ImproperlyConfigured("EXPORT_DOWNLOADS=redirect needs STORAGE_BACKEND=s3 (a folder has no presigned URLs).")
# The endpoint the users' browsers reach the bucket at, when it is not the one the app uses (AWS_S3_ENDPOINT_URL,
# e.g. http://minio:9000 inside a cluster): only presigned download URLs are signed for it.
AWS_S3_PUBLIC_ENDPOINT_URL = (env("AWS_S3_PUBLIC_ENDPOINT_URL") or "").strip()
if AWS_S3_PUBLIC_ENDPOINT_URL:
    if STORAGE_BACKEND != "s3":
        raise ImproperlyConfigured("AWS_S3_PUBLIC_ENDPOINT_URL needs STORAGE_BACKEND=s3.")
    _public = urlsplit(AWS_S3_PUBLIC_ENDPOINT_URL)
    if _public.scheme not in ("http", "https") or not _public.hostname or _public.query or _public.fragment:
        raise ImproperlyConfigured(
            f"AWS_S3_PUBLIC_ENDPOINT_URL={AWS_S3_PUBLIC_ENDPOINT_URL!r}: use an http(s) URL such as "
            "https://files.example.com (no query)."
        )
EXPORT_DOWNLOAD_URL_SECONDS = env_int("EXPORT_DOWNLOAD_URL_SECONDS", 300)
# A stored file that could not be deleted (the object store was down) is deleted again by the watchdog's sweep:
# first this many seconds later, then after twice as long each time, up to the maximum.
STORAGE_DELETE_RETRY_FIRST_SECONDS = env_int("STORAGE_DELETE_RETRY_FIRST_SECONDS", 60)
STORAGE_DELETE_RETRY_MAX_SECONDS = env_int("STORAGE_DELETE_RETRY_MAX_SECONDS", 6 * 3600)
if not 1 <= STORAGE_DELETE_RETRY_FIRST_SECONDS <= STORAGE_DELETE_RETRY_MAX_SECONDS:
    raise ImproperlyConfigured(
        f"STORAGE_DELETE_RETRY_FIRST_SECONDS={STORAGE_DELETE_RETRY_FIRST_SECONDS} must be at least 1 and at most "
        f"STORAGE_DELETE_RETRY_MAX_SECONDS={STORAGE_DELETE_RETRY_MAX_SECONDS}."
    )
if not 1 <= EXPORT_DOWNLOAD_URL_SECONDS <= 7 * 24 * 3600:
    raise ImproperlyConfigured("EXPORT_DOWNLOAD_URL_SECONDS must be 1 to 604800 (S3's limit for presigned URLs).")

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie; kept default for clarity
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Scripts only from this site's static files: no inline script, no eval (the charts use Vega's expression
# interpreter, not generated code). Styles allow inline ones: templates carry style attributes, and vega-embed's
# tooltip and htmx's indicator add <style> elements; no user text reaches a style. See policyhub/csp.py.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
    "font-src 'self'", "connect-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
    "frame-ancestors 'none'",
])  # fmt: skip
CONTENT_SECURITY_POLICY_EXEMPT = ["/api/docs"]  # django-ninja's Swagger UI: its CDN and an inline script
# HTTPS without DEBUG: each can be turned off (e.g. SECURE_SSL_REDIRECT=0 when the TLS-terminating proxy
# redirects itself). Behind such a proxy, SECURE_PROXY_SSL_HEADER names the header it sets on HTTPS requests.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")

# Login throttling (django-axes), for the login page and the admin's: after AXES_FAILURE_LIMIT wrong passwords
# for one username from one address, that pair is refused for the cool-off, even with the right password.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # a stranger cannot lock a user out from elsewhere
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The number of proxies in front of the app whose X-Forwarded-For is trusted; 0: REMOTE_ADDR only.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_COUNT={TRUSTED_PROXY_COUNT} must be 0 (no proxy) or more.")
AXES_CLIENT_IP_CALLABLE = "policyhub.client_address.client_address"

# --- Celery -------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://localhost//"  # the transport ignores the host; naming it avoids a warning
    _broker_dir = VAR_DIR / "celery"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # A task whose worker died unacknowledged is handed out again after this many seconds (Redis). A short
    # timeout (tests, fast recovery) also needs the sweep for such tasks to run often.
    _visibility = int(env("CELERY_VISIBILITY_TIMEOUT", "3600"))
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _visibility}
    if _visibility < 300:
        CELERY_BROKER_TRANSPORT_OPTIONS.update(unacked_restore_interval=1, unacked_restore_throttle=1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- labeling -------------------------------------------------------------------------------------------------
# A chunk of a labeling run is leased by one worker at a time (renewed every 2 s while it works); a dead worker's
# lease expires after this long and the watchdog sends the chunk again.
LABELING_CHUNK_LEASE_SECONDS = int(env("LABELING_CHUNK_LEASE_SECONDS", "120"))
# The same for an import or an export a worker is on (renewed a few times per lease) and for a batch poll that is
# this long overdue.
WORK_LEASE_SECONDS = int(env("WORK_LEASE_SECONDS", "120"))
# The watchdog (policyhub.watchdog) looks for stuck work this often: Celery beat sends it (bin/run starts beat).
WATCHDOG_INTERVAL_SECONDS = float(
    env("WATCHDOG_INTERVAL_SECONDS", str(min(LABELING_CHUNK_LEASE_SECONDS, WORK_LEASE_SECONDS) / 2))
)
# Its own queue (below): a sweep never waits behind a backlog, and the sweep can tell that no work message is
# waiting.
WATCHDOG_QUEUE = "housekeeping"
# --- queues: one per kind of work ------------------------------------------------------------------------------
# Each kind of work has its own Celery queue, so a deployment can give each its own pool of workers (-Q teacher,
# -Q imports,exports, ...): a million-pair run fills the teacher queue and never delays an import or an export.
# A worker started without -Q consumes every queue below (bin/run, the tests); "celery" keeps the small rest (a
# version's prompt freeze on publish).
TEACHER_QUEUE, BATCH_QUEUE, IMPORTS_QUEUE, EXPORTS_QUEUE = "teacher", "batch", "imports", "exports"
CELERY_TASK_DEFAULT_QUEUE = "celery"
WORK_QUEUES = (CELERY_TASK_DEFAULT_QUEUE, TEACHER_QUEUE, BATCH_QUEUE, IMPORTS_QUEUE, EXPORTS_QUEUE, WATCHDOG_QUEUE)
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in WORK_QUEUES]
CELERY_TASK_ROUTES = {
    "labeling.tasks.labeling_run_chunk": {"queue": TEACHER_QUEUE},  # an online run's chunks
    "labeling.tasks.labeling_run_batch_submit": {"queue": BATCH_QUEUE},  # Batch API submissions and polls
    "labeling.tasks.labeling_run_batch_poll": {"queue": BATCH_QUEUE},
    "labeling.tasks.import_batch_process": {"queue": IMPORTS_QUEUE},
    "exports.tasks.export_build_task": {"queue": EXPORTS_QUEUE},
    "policyhub.tasks.watchdog_sweep": {"queue": WATCHDOG_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    "watchdog-sweep": {
        "task": "policyhub.tasks.watchdog_sweep",
        "schedule": WATCHDOG_INTERVAL_SECONDS,
        # a sweep that waited a whole interval is dropped: the next one is on its way
        "options": {"queue": WATCHDOG_QUEUE, "expires": WATCHDOG_INTERVAL_SECONDS},
    }
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# An annotator's claim on a review item; an abandoned item returns to the queue when it expires.
REVIEW_LEASE_SECONDS = int(env("REVIEW_LEASE_SECONDS", "600"))
# How long after saving a review its annotator can still undo it (never once the item is gold or exported).
REVIEW_UNDO_WINDOW_SECONDS = int(env("REVIEW_UNDO_WINDOW_SECONDS", "600"))
# A batch-mode run asks the OpenAI Batch API for its batch's status this often until it ends.
LABELING_BATCH_POLL_SECONDS = int(env("LABELING_BATCH_POLL_SECONDS", "30"))
# A large running run's page figures (counts, trust rates, timeline) are computed again at most this often while it
# writes answers, and never sooner than four times as long as computing them took (labeling.services.figures).
RUN_FIGURES_REFRESH_SECONDS = env_int("RUN_FIGURES_REFRESH_SECONDS", 10)
if not 1 <= RUN_FIGURES_REFRESH_SECONDS <= 3600:
    raise ImproperlyConfigured(f"RUN_FIGURES_REFRESH_SECONDS={RUN_FIGURES_REFRESH_SECONDS} must be 1 to 3600.")
# Imports: the largest file accepted (bytes; the form, the API and the worker refuse a larger one with its size)
# and the longest line of a CSV or JSONL file (bytes; a longer line is a bad row with its line number).
IMPORT_MAX_UPLOAD_BYTES = int(env("IMPORT_MAX_UPLOAD_BYTES", str(512 * 1024 * 1024)))
IMPORT_MAX_LINE_BYTES = int(env("IMPORT_MAX_LINE_BYTES", str(1024 * 1024)))
# A pairs import proves its foreign keys by its own join under locks; skip the per-row checks where the database
# role may (labeling.imports.staging.references_proved); off: always check per row.
IMPORT_SKIP_ROW_FK_CHECKS = env_bool("IMPORT_SKIP_ROW_FK_CHECKS", True)
# Larger uploads go to a temporary file holding at most IMPORT_MAX_UPLOAD_BYTES of them (see that module).
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "labeling.imports.uploads.CappedUploadHandler",
]
# Label Studio, for pushing a run's needs-review items and pulling the annotations back (both needed for that).
LABEL_STUDIO_URL = env("LABEL_STUDIO_URL", "")
LABEL_STUDIO_API_KEY = env("LABEL_STUDIO_API_KEY", "")
LABEL_STUDIO_TIMEOUT = float(env("LABEL_STUDIO_TIMEOUT", "60"))

# --- teacher API keys and endpoints -------------------------------------------------------------------------------
#: Variables no teacher key may read: PolicyHub's own secrets and connection strings.
TEACHER_KEY_FORBIDDEN_ENV = frozenset(
    {
        "SECRET_KEY",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "LABEL_STUDIO_API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    }  # fmt: skip
)


def _teacher_key(name: str, value) -> dict:
    """One entry of TEACHER_API_KEYS as ``{"env": VAR, "base_urls": [...]}`` (an empty list: any allowed URL)."""
    entry = {"env": value, "base_urls": []} if isinstance(value, str) else value
    if not isinstance(entry, dict) or not isinstance(entry.get("env"), str):
        raise ImproperlyConfigured(f'TEACHER_API_KEYS: {name} must be "VAR" or {{"env": "VAR", "base_urls": [...]}}.')
    urls = entry.get("base_urls") or []
    if isinstance(urls, str) or not all(isinstance(url, str) and url for url in urls):
        raise ImproperlyConfigured(f"TEACHER_API_KEYS: base_urls of {name} must be a list of URLs or host names.")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
        raise ImproperlyConfigured(f"TEACHER_API_KEYS: {name!r} is not a key name (a-z, 0-9, _ and -).")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", entry["env"]) or entry["env"] in TEACHER_KEY_FORBIDDEN_ENV:
        raise ImproperlyConfigured(f"TEACHER_API_KEYS: {name} may not read {entry['env']!r}.")
    return {"env": entry["env"], "base_urls": [url.strip() for url in urls]}


def env_teacher_keys(name: str, default: dict) -> dict[str, dict]:
    """Teacher API keys by name. JSON (``{"openai": {"env": "OPENAI_API_KEY", "base_urls": ["https://…"]},
    "local": "LOCAL_KEY"}``) or the simple syntax ``openai=OPENAI_API_KEY@https://api.openai.com/v1|host2,
    local=LOCAL_KEY``: comma-separated ``NAME=VAR``, optionally ``@`` and the ``|``-separated base URLs (URL
    prefixes, or bare host names) the key may be sent to."""
    value = env(name)
    if value is None:
        raw: dict = default
    elif value.strip().startswith("{"):
        try:
            raw = json.loads(value)
        except ValueError as error:
            raise ImproperlyConfigured(f"{name} is not valid JSON: {error}") from None
    else:
        raw = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            key, sep, rest = item.partition("=")
            if not sep:
                raise ImproperlyConfigured(f"{name}: {item!r} is not NAME=VAR or NAME=VAR@URL|URL.")
            var, _, urls = rest.partition("@")
            raw[key.strip()] = {"env": var.strip(), "base_urls": [u for u in urls.split("|") if u.strip()]}
    return {key: _teacher_key(key, entry) for key, entry in raw.items()}


# The API keys a teacher config may use: name -> the variable the workers read it from, and the base URLs it may
# be sent to. Default: ``openai`` reads OPENAI_API_KEY and goes to OpenAI or to the OPENAI_BASE_URL set here.
_openai_urls = ["https://api.openai.com/v1"] + ([env("OPENAI_BASE_URL")] if env("OPENAI_BASE_URL") else [])
TEACHER_API_KEYS = env_teacher_keys(
    "TEACHER_API_KEYS", {"openai": {"env": "OPENAI_API_KEY", "base_urls": _openai_urls}}
)
# Hosts, addresses or networks (CIDR) a teacher base URL may resolve to although they are private, loopback or
# link-local (e.g. ``127.0.0.1`` for a local vLLM or Ollama). The host of OPENAI_BASE_URL is always allowed.
TEACHER_ALLOWED_PRIVATE_HOSTS = env_list("TEACHER_ALLOWED_PRIVATE_HOSTS", [])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # one line per teacher request is noise; failures are recorded on the samples themselves
    "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpx2", "httpcore", "openai")},
}
