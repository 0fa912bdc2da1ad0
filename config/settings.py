"""Settings, all from the environment.

With nothing set the project runs on the *embedded default*: a SQLite file under
``var/``, Celery tasks executed eagerly in-process, DEBUG on and a generated dev
secret. ``DATABASE_URL`` and ``CELERY_BROKER_URL`` (or ``REDIS_URL``) switch to
PostgreSQL and Redis with real workers. ``DJANGO_ENV=production`` refuses to
start without a real secret and turns on the HTTPS-only settings.
"""
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"
DEBUG = env.bool("DEBUG", default=not PRODUCTION)


def _dev_secret_key() -> str:
    """A secret generated once per checkout, so sessions survive a restart."""
    VAR_DIR.mkdir(exist_ok=True)
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("DJANGO_ENV=production needs SECRET_KEY set in the environment.")
    SECRET_KEY = _dev_secret_key()
if PRODUCTION and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters in production.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.PlatformAdminConfig",  # Django's admin, signed into through the console
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "governance",
    "audit",
    "flows",
    "identity",
    "console",
    "reports",
    "scim",
]

MIDDLEWARE = [
    "config.health.HealthCheckMiddleware",  # /healthz and /readyz, before host checks and HTTPS redirects
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "config.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): a TOTP check passed in this session
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
    },
]

# Database: embedded SQLite unless DATABASE_URL says otherwise.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60 if PRODUCTION else 0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the dev server and an eager task share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
USING_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# A 10,000-flow batch is about 3 MB of JSON.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=16 * 2**20)

# The cache holds throttle counters: shared through Redis when there is one, per process otherwise
# (and per process while that Redis does not answer: config/cache.py). CELERY_BROKER_URL alone does
# not move the cache to the broker's Redis: REDIS_URL names one Redis for both.
_cache_url = env("CACHE_URL", default=env("REDIS_URL", default=""))
# A Redis that hangs rather than refuses costs a request at most this, and only now and then.
REDIS_TIMEOUT_SECONDS = env.float("REDIS_TIMEOUT_SECONDS", default=0.5)
CACHES = {"default": {"BACKEND": "config.cache.FallbackRedisCache", "LOCATION": _cache_url,
                      "OPTIONS": {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
                                  "socket_timeout": REDIS_TIMEOUT_SECONDS}}
          if _cache_url else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: a real broker when one is configured, otherwise tasks run eagerly in-process.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=env("REDIS_URL", default=""))
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Unacknowledged messages come back after this long if a worker dies; the outbox sweep
# re-drives pending work much sooner, so this is only a backstop.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
                                   # without a socket timeout a send to a hung Redis waits forever; a
                                   # worker's BRPOP is answered within its 1 s, so 2 s is no false alarm
                                   "socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": 2.0}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A send retries once at once (a pooled connection Redis dropped), then the work waits for the sweep.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}



def _dev_signing_key() -> str:
    """An Ed25519 key generated once per checkout for signing audit digests in development."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = VAR_DIR / "audit-signing-key.pem"
    if not path.exists():
        VAR_DIR.mkdir(exist_ok=True)
        path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        path.chmod(0o600)
    return path.read_text()


# Audit trail: the Ed25519 key that signs digests (PEM text, or a file holding it).
AUDIT_SIGNING_KEY = env("AUDIT_SIGNING_KEY", default="").replace("\\n", "\n")
if not AUDIT_SIGNING_KEY and env("AUDIT_SIGNING_KEY_FILE", default=""):
    AUDIT_SIGNING_KEY = Path(env("AUDIT_SIGNING_KEY_FILE")).read_text()
if not AUDIT_SIGNING_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("DJANGO_ENV=production needs AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE.")
    AUDIT_SIGNING_KEY = _dev_signing_key()
AUDIT_DIGEST_MINUTES = env.int("AUDIT_DIGEST_MINUTES", default=60)
# The sweep re-drives outbox rows whose task was lost (broker down, worker killed).
AUDIT_SWEEP_SECONDS = env.float("AUDIT_SWEEP_SECONDS", default=30)
AUDIT_SWEEP_AFTER_SECONDS = env.float("AUDIT_SWEEP_AFTER_SECONDS", default=60)
AUDIT_DRAIN_BATCH = env.int("AUDIT_DRAIN_BATCH", default=2000)
# Flow batches still waiting after this long are re-driven by the sweep (a lost task, a dead worker).
FLOW_SWEEP_AFTER_SECONDS = env.float("FLOW_SWEEP_AFTER_SECONDS", default=60)
FLOW_SWEEP_LIMIT = env.int("FLOW_SWEEP_LIMIT", default=500)
# Webhooks reach public addresses only (config/outbound.py); these named hosts, comma-separated, may be
# internal (tests, on-premise receivers). Production sends webhooks over HTTPS only.
WEBHOOK_ALLOWED_HOSTS = env.list("WEBHOOK_ALLOWED_HOSTS", default=[])
WEBHOOK_HTTPS_ONLY = PRODUCTION

CELERY_BEAT_SCHEDULE = {
    "audit-sweep": {"task": "audit.tasks.sweep", "schedule": AUDIT_SWEEP_SECONDS},
    "audit-write-digests": {"task": "audit.tasks.write_digests", "schedule": AUDIT_DIGEST_MINUTES * 60.0},
    "flows-sweep": {"task": "flows.tasks.sweep_flows", "schedule": AUDIT_SWEEP_SECONDS},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Report schedules live in the database (django-celery-beat); the entries above are copied there too.
CELERY_BEAT_SCHEDULER = env("CELERY_BEAT_SCHEDULER", default="django_celery_beat.schedulers:DatabaseScheduler")
CELERY_BEAT_SCHEDULE["reports-sweep"] = {"task": "reports.tasks.sweep_reports", "schedule": AUDIT_SWEEP_SECONDS}

# Encrypts each organization's OIDC client secret at rest (identity.secrets). Comma-separated Fernet
# keys, newest first: secrets are written with the first and read with any, so a key can be rotated.
# Unset, a key is derived from SECRET_KEY (rotating SECRET_KEY then means re-entering client secrets).
SSO_SECRET_KEYS = env.list("SSO_SECRET_KEYS", default=[])
# Identity providers are fetched at public addresses only (config/outbound.py), over HTTPS in
# production; these named hosts, comma-separated, may be internal (an on-premise IdP, tests).
SSO_ALLOWED_HOSTS = env.list("SSO_ALLOWED_HOSTS", default=[])
SSO_HTTPS_ONLY = PRODUCTION
# OIDC nonces and SAML assertion ids are remembered (replays refused) until their answer expired.
CELERY_BEAT_SCHEDULE["identity-forget-used-assertions"] = {"task": "identity.tasks.forget_used_assertions",
                                                           "schedule": 3600.0}

# E-mail (scheduled reports, invitations, password resets): printed to the console unless
# EMAIL_BACKEND names another backend.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="reports@localhost")
# Where e-mailed links point: the console's public address.
SITE_URL = env("SITE_URL", default="http://localhost:8000")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "identity.authentication.ConsoleSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.OrgRolePermission"],
    "DEFAULT_PAGINATION_CLASS": "config.api.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["config.filters.StrictFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.problem_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["config.formats.JSONRenderer"]
    + ([] if PRODUCTION else ["rest_framework.renderers.BrowsableAPIRenderer"]),
    "DEFAULT_PARSER_CLASSES": ["config.formats.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    # OPTIONS answers 405: its metadata would tell another organization which objects exist (it tries PUT).
    "DEFAULT_METADATA_CLASS": None,
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"principal": env("API_THROTTLE_RATE", default="100000/min"),
                               "scim": env("SCIM_THROTTLE_RATE", default="100000/min")},
    "PAGE_SIZE": 100,
}

# Content-Security-Policy on every response (django-csp): everything from this site, no inline
# script, nothing framing it. Two inline styles plotly.js writes are allowed by hash: the map
# stylesheet its bundle injects at load (constant bytes, plotly.js 4.1.1) and the empty style=""
# it puts on colour-bar rects. Pages that need more (Redoc) widen it for themselves only.
PLOTLY_MAP_STYLESHEET_SHA256 = "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='"
CONTENT_SECURITY_POLICY = {"DIRECTIVES": {
    "default-src": ["'self'"], "script-src": ["'self'"], "style-src": ["'self'", PLOTLY_MAP_STYLESHEET_SHA256],
    "style-src-attr": ["'unsafe-hashes'", "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"],  # style=""
    "img-src": ["'self'", "data:"], "font-src": ["'self'"], "connect-src": ["'self'"], "object-src": ["'none'"],
    "base-uri": ["'none'"], "form-action": ["'self'"], "frame-ancestors": ["'none'"],
}}

SPECTACULAR_SETTINGS = {
    "TITLE": "Consent & AI-data governance API",
    "DESCRIPTION": "Switches, consent, decisions and the audit trail of an organization's AI data use.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.schema.add_problem_responses"],
    "ENUM_NAME_OVERRIDES": {"EffectEnum": "governance.models.Effect", "ScopeEnum": "governance.models.Scope",
                            "ReportFormatEnum": "reports.models.Format"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # a broker outage is logged once when it begins, not once per request that commits work
    "filters": {"skip_known_broker_outage": {"()": "config.celery.SkipKnownBrokerOutage"}},
    "loggers": {"django.db.backends.base": {"filters": ["skip_known_broker_outage"]},
                # pysaml2's schema library tells at INFO each schema it loads twice, at start-up
                "xmlschema": {"level": "WARNING"}},
}

if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    X_FRAME_OPTIONS = "DENY"
