"""Settings shared by every environment. Behaviour differs only through env variables."""

from datetime import timedelta

from config.env import BASE_DIR, VAR_DIR, env

# GENERAL
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-insecure-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list(
    "DJANGO_CSRF_TRUSTED_ORIGINS", default=["http://127.0.0.1:8000", "http://localhost:8000"]
)
SITE_URL = env.str("TRADELOOP_SITE_URL", default="http://127.0.0.1:8000")
TIME_ZONE = "UTC"
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# APPS
DJANGO_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "channels",
    "django_htmx",
    "template_partials",
    "axes",
]
LOCAL_APPS = [
    "apps.common",
    "apps.audit",
    "apps.accounts",
    "apps.exchanges",
    "apps.dashboard",
    "apps.backtests",
    "apps.market",
    "apps.strategies",
    "apps.optimizations",
    "apps.bots",
    "apps.signals",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Axes must come last so it sees the authentication outcome.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

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

# DATABASES
# https://docs.djangoproject.com/en/5.2/ref/settings/#databases
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/tradeloop")
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The web process (config/asgi.py sets it) runs each request's sync code on a thread of
# its own: a persistent connection per thread would leak, and a new one per request costs a
# PostgreSQL backend start. A psycopg pool lends one per request instead (Django closes it
# back into the pool at the request's end). Celery's prefork workers keep CONN_MAX_AGE.
DB_POOL_MAX = env.int("DJANGO_DB_POOL_MAX", default=0)
if DB_POOL_MAX:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": DB_POOL_MAX,
        "timeout": 10,
    }

# REDIS / CACHES
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("TRADELOOP_CACHE_PREFIX", default="tl"),
    }
}

# AUTHENTICATION
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses locked-out credentials before any password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "dashboard:landing"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# SESSIONS (SEC-3)
SESSION_COOKIE_AGE = env.int(
    "DJANGO_SESSION_COOKIE_AGE", default=int(timedelta(days=7).total_seconds())
)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)

# BRUTE FORCE PROTECTION (SEC-4)
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_USERNAME_FORM_FIELD = "username"
AXES_HTTP_RESPONSE_CODE = 429
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
# Only a trusted reverse proxy may set X-Forwarded-For; count its hops here (0 = none).
# The one setting for every client IP: logins (axes), the audit trail and the webhooks'
# IP allowlist (apps.accounts.client_ip).
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0)
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)
# django-ipware is not installed, so axes would ignore the proxy count; this resolver honours it.
AXES_CLIENT_IP_CALLABLE = "apps.accounts.client_ip.client_ip_address"

# STATIC
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

# EMAIL
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=1025)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tradeloop <noreply@tradeloop.local>")

# ENCRYPTION OF EXCHANGE KEYS (SEC-6)
# Comma-separated Fernet keys, newest first: the first encrypts, every key decrypts.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
# Pepper for key fingerprints (duplicate detection), separate from SECRET_KEY.
KEY_FINGERPRINT_PEPPER = env.str("KEY_FINGERPRINT_PEPPER", default="dev-fingerprint-pepper")

# EXCHANGES
# Overrides every ccxt base URL, e.g. http://127.0.0.1:8900 for the loopback fake exchange.
EXCHANGE_BASE_URL_OVERRIDE = env.str("EXCHANGE_BASE_URL_OVERRIDE", default="")
EXCHANGE_TIMEOUT_MS = env.int("EXCHANGE_TIMEOUT_MS", default=10_000)
# ccxt's own per-client throttle; turn it off only against the loopback fake exchange.
EXCHANGE_CLIENT_THROTTLE = env.bool("EXCHANGE_CLIENT_THROTTLE", default=True)
# How long an order whose create got no answer is looked up by its client id before the
# task leaves it UNKNOWN to the reconcile; and how long the reconcile keeps looking before
# it concludes the order was never placed (Binance hides new orders for up to minutes).
EXCHANGE_ORDER_LOOKUP_SECONDS = env.float("EXCHANGE_ORDER_LOOKUP_SECONDS", default=5.0)
EXCHANGE_ORDER_GRACE_SECONDS = env.float("EXCHANGE_ORDER_GRACE_SECONDS", default=180.0)
# Live accounts stay refused by the bots until live trading lands (a later issue).
BOTS_LIVE_TRADING = env.bool("BOTS_LIVE_TRADING", default=False)

# DJANGO REST FRAMEWORK
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"user": "600/min", "anon": "60/min"},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tradeloop API",
    "DESCRIPTION": "Exchange accounts, strategies, backtests and bots.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# CELERY (CEL-2, reliability.md §4.3)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless
# this is set: a new PostgreSQL backend per task, about 15 ms of every alert (issue 7).
# With it the connection serves this many tasks; config/celery.py still drops a broken or
# CONN_MAX_AGE-old one around each task, as Django does around a request.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 30
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ["ticks", "orders", "backtests", "default"]
CELERY_TASK_ROUTES = {
    "apps.bots.tasks.*": {"queue": "ticks"},
    "apps.signals.tasks.*": {"queue": "orders"},
    "apps.backtests.tasks.*": {"queue": "backtests"},
    "apps.optimizations.tasks.*": {"queue": "backtests"},
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "apps.common.heartbeat:HeartbeatDatabaseScheduler"
# Periodic tasks, registered in one place; the DatabaseScheduler copies them into
# django-celery-beat's tables at start.
CELERY_BEAT_SCHEDULE = {
    # Fails backtests left "running" by a worker that died (apps/backtests/tasks.py).
    "backtests-fail-stale": {
        "task": "apps.backtests.tasks.backtest_tasks_fail_stale",
        "schedule": timedelta(minutes=1),
        "options": {"queue": "default"},
    },
    # The same for optimisations (apps/optimizations/tasks.py).
    "optimizations-fail-stale": {
        "task": "apps.optimizations.tasks.optimization_tasks_fail_stale",
        "schedule": timedelta(minutes=1),
        "options": {"queue": "default"},
    },
    # Bots: enqueue the due ticks (apps/bots/schedule.py); often, for replay speed.
    "bots-schedule-due": {
        "task": "apps.bots.tasks.bots_schedule_due",
        "schedule": timedelta(seconds=env.float("BOTS_SCHEDULE_SECONDS", default=1.0)),
        "options": {"queue": "ticks", "expires": 10},
    },
    # Bots: orders a crash left PENDING_SUBMIT or UNKNOWN (also run when a worker starts).
    "bots-reconcile": {
        "task": "apps.bots.tasks.bots_reconcile",
        "schedule": timedelta(minutes=1),
        "options": {"queue": "ticks"},
    },
}
# Bots (apps/bots): warmup window, how late a candle may be ticked before it counts as
# dropped, how long a claimed tick waits before it is enqueued again (a lost message comes
# back within 2 minutes; under the visibility timeout), shared live-feed request rate per
# exchange.
BOTS_WARMUP_BARS = env.int("BOTS_WARMUP_BARS", default=300)
BOTS_TICK_MAX_LAG_SECONDS = env.float("BOTS_TICK_MAX_LAG_SECONDS", default=300.0)
BOTS_TICK_LEASE_SECONDS = env.float("BOTS_TICK_LEASE_SECONDS", default=120.0)
# Ticks are claimed this long before their candle closes and wait in the worker with an
# ETA at the close (apps/bots/schedule.py); more than the beat interval plus a claim, far
# under the visibility timeout (CEL-2).
BOTS_SCHEDULE_AHEAD_SECONDS = env.float("BOTS_SCHEDULE_AHEAD_SECONDS", default=3.0)
BOTS_FEED_REQUESTS_PER_SECOND = env.int("BOTS_FEED_REQUESTS_PER_SECOND", default=5)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Heartbeats older than this are reported as down by /healthz.
HEARTBEAT_STALE_AFTER_SECONDS = env.int("HEARTBEAT_STALE_AFTER_SECONDS", default=60)

# CHANNELS
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env.str("TRADELOOP_CHANNELS_PREFIX", default="tl"),
        },
    }
}

# USER QUOTAS (defaults for new users; operators change them per user in the admin)
DEFAULT_MAX_BOTS = env.int("TRADELOOP_DEFAULT_MAX_BOTS", default=10)
DEFAULT_MAX_EXCHANGE_ACCOUNTS = env.int("TRADELOOP_DEFAULT_MAX_EXCHANGE_ACCOUNTS", default=10)
DEFAULT_MAX_API_TOKENS = env.int("TRADELOOP_DEFAULT_MAX_API_TOKENS", default=10)

# DEMO
DEMO_USER_EMAIL = env.str("TRADELOOP_DEMO_EMAIL", default="demo@tradeloop.local")
DEMO_USER_PASSWORD = env.str("TRADELOOP_DEMO_PASSWORD", default="demo-trader-2026")

# LOGGING: every handler carries the secret redaction filter (CCXT-4).
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "apps.common.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # ccxt logs request headers (including the API key) at DEBUG; never below INFO.
        "ccxt": {"level": "INFO"},
        "ccxt.base.exchange": {"level": "INFO"},
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}

# SIGNALS (TradingView webhooks, apps/signals)
SIGNALS_RATE_LIMIT_PER_MINUTE = env.int("SIGNALS_RATE_LIMIT_PER_MINUTE", default=1200)
SIGNALS_MAX_BODY_BYTES = 1024 * 1024
# Identical alerts with neither an id nor a time are one alert within this many seconds
# (TradingView retries within seconds); later they are a new signal.
SIGNALS_DEDUP_WINDOW_SECONDS = env.int("SIGNALS_DEDUP_WINDOW_SECONDS", default=60)
# Webhook deliveries handled at once per web process (each holds a database connection).
SIGNALS_HOOK_CONCURRENCY = env.int("SIGNALS_HOOK_CONCURRENCY", default=8)
# The webhook's sender address comes from the one proxy count, AXES_IPWARE_PROXY_COUNT.
