"""traysvc settings: everything comes from the environment (see README, Configuration)."""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from traysvc.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TRAYSVC_VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")

DEBUG = env_bool("DEBUG", False)
TESTING = env_bool("TRAYSVC_TESTING", False)


def _dev_secret(filename: str, make: callable) -> str:  # type: ignore[valid-type]
    """Development only: a secret generated once into var/ so restarts keep sessions and data."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / filename
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _new_aes_key() -> str:
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


SECRET_KEY = env_str("SECRET_KEY") or ""
if not SECRET_KEY:
    if DEBUG or TESTING:
        SECRET_KEY = _dev_secret("secret_key", lambda: secrets.token_urlsafe(50))
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: set SECRET_KEY (or SECRET_KEY_FILE) when DEBUG=0."
        )

TRAYSVC_ENCRYPTION_KEYS = env_list("TRAYSVC_ENCRYPTION_KEYS")
if not TRAYSVC_ENCRYPTION_KEYS:
    if DEBUG or TESTING:
        TRAYSVC_ENCRYPTION_KEYS = [_dev_secret("encryption_key", _new_aes_key)]
    else:
        raise ImproperlyConfigured(
            "TRAYSVC_ENCRYPTION_KEYS is not set: give a comma list of urlsafe-base64 32-byte "
            "keys (the first encrypts) when DEBUG=0."
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
TRAYSVC_PUBLIC_URL = (env_str("TRAYSVC_PUBLIC_URL", "http://127.0.0.1:8000") or "").rstrip("/")
CSRF_TRUSTED_ORIGINS = [TRAYSVC_PUBLIC_URL] + env_list("CSRF_TRUSTED_ORIGINS")
# Tests run with the sandbox provider on: the OAuth tests use it as their real provider.
TRAYSVC_SANDBOX = env_bool("TRAYSVC_SANDBOX", TESTING)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "traysvc",
    "workspaces",
    "services",
    "httpclient",
]
if TRAYSVC_SANDBOX:
    INSTALLED_APPS += ["oauth2_provider", "sandbox"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "traysvc.urls"
WSGI_APPLICATION = "traysvc.wsgi.application"

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
                "django.template.context_processors.csp",
                "workspaces.context_processors.tenancy",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the embedded worker and the web process share one file.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL") or ""
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "traysvc_cache",
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only in tests

# allauth: email is the login; verification is mandatory.
ACCOUNT_ADAPTER = "workspaces.adapter.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if TRAYSVC_PUBLIC_URL.startswith("https:") else "http"
ACCOUNT_RATE_LIMITS = False if TESTING else {}
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "traysvc"

_email_backend = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
MAILERS = {
    "default": {
        "BACKEND": _email_backend,
        "OPTIONS": (
            {
                "host": env_str("EMAIL_HOST", "localhost"),
                "port": env_int("EMAIL_PORT", 25),
                "username": env_str("EMAIL_HOST_USER", ""),
                "password": env_str("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("EMAIL_USE_TLS", False),
                "timeout": 10,
            }
            if _email_backend.endswith("smtp.EmailBackend")
            else {}
        ),
    }
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "traysvc <noreply@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = DEBUG or TESTING
WHITENOISE_AUTOREFRESH = DEBUG or TESTING
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Security headers. CSP through Django 6's built-in support: no inline script anywhere.
from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF, "*"],  # the OAuth consent redirect leaves for the provider
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG and not TESTING:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Celery: Redis when REDIS_URL is set, else a filesystem broker that needs no server.
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Product settings.
AUTH_REFRESH_AHEAD_SECONDS = env_int("AUTH_REFRESH_AHEAD_SECONDS", 300)
AUTH_REFRESH_SWEEP_SECONDS = env_int("AUTH_REFRESH_SWEEP_SECONDS", 60, minimum=1)
# Warn (status expiring) this many days before a grant's refresh token itself expires.
AUTH_REFRESH_TOKEN_WARN_DAYS = env_int("AUTH_REFRESH_TOKEN_WARN_DAYS", 7)
# How long a refresh waits for another worker's lock on the same grant before giving up.
AUTH_REFRESH_LOCK_TIMEOUT_SECONDS = env_int("AUTH_REFRESH_LOCK_TIMEOUT_SECONDS", 10, minimum=1)
# Total budget of one token endpoint request (exchange, refresh, revoke).
AUTH_TOKEN_TIMEOUT_SECONDS = env_int("AUTH_TOKEN_TIMEOUT_SECONDS", 15, minimum=1)
HTTPCLIENT_ALLOW_NETWORKS = env_list("HTTPCLIENT_ALLOW_NETWORKS")
HTTPCLIENT_DEFAULT_TIMEOUT = float(env_int("HTTPCLIENT_DEFAULT_TIMEOUT", 30, minimum=1))
HTTPCLIENT_MAX_TIMEOUT = float(env_int("HTTPCLIENT_MAX_TIMEOUT", 120, minimum=1))
HTTPCLIENT_MAX_REDIRECTS = env_int("HTTPCLIENT_MAX_REDIRECTS", 5)
HTTPCLIENT_MAX_RESPONSE_BYTES = env_int("HTTPCLIENT_MAX_RESPONSE_BYTES", 10 * 1024 * 1024)
# The runner's retries of a 429/503: attempts in all (a 401's one refresh-and-retry comes on
# top), the longest Retry-After it waits for, the base of its jittered backoff without one.
HTTPCLIENT_MAX_ATTEMPTS = env_int("HTTPCLIENT_MAX_ATTEMPTS", 3, minimum=1)
HTTPCLIENT_RETRY_AFTER_MAX_SECONDS = env_float("HTTPCLIENT_RETRY_AFTER_MAX_SECONDS", 10.0)
HTTPCLIENT_BACKOFF_SECONDS = env_float("HTTPCLIENT_BACKOFF_SECONDS", 0.5)
# "All pages": at most this many pages, stopping once this many bytes have come back.
HTTPCLIENT_MAX_PAGES = env_int("HTTPCLIENT_MAX_PAGES", 10, minimum=1)
HTTPCLIENT_MAX_PAGE_BYTES = env_int("HTTPCLIENT_MAX_PAGE_BYTES", 20 * 1024 * 1024, minimum=1)
# Characters of each request and response body kept in a CallLog row.
HTTPCLIENT_CALLLOG_BODY_CHARS = env_int("HTTPCLIENT_CALLLOG_BODY_CHARS", 16384)
# The largest request body a call may send (bigger is a 422 before anything is sent).
HTTPCLIENT_MAX_REQUEST_BYTES = env_int("HTTPCLIENT_MAX_REQUEST_BYTES", 10 * 1024 * 1024)
CALLLOG_RETENTION_DAYS = env_int("CALLLOG_RETENTION_DAYS", 30, minimum=1)
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600)
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5)
INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", 7, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs full URLs (query strings may hold secrets) at INFO.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# --- Sandbox OAuth2 provider (django-oauth-toolkit) ---
# Only used when TRAYSVC_SANDBOX mounts oauth2_provider + sandbox; harmless otherwise.
# Short access tokens by default so a newcomer sees a refresh happen within minutes.
SANDBOX_ACCESS_TOKEN_SECONDS = env_int("SANDBOX_ACCESS_TOKEN_SECONDS", 300, minimum=1)
SANDBOX_REFRESH_TOKEN_SECONDS = env_int("SANDBOX_REFRESH_TOKEN_SECONDS", 86400, minimum=1)
SANDBOX_ISSUER = f"{TRAYSVC_PUBLIC_URL}/sandbox/o"
OAUTH2_PROVIDER = {
    "PKCE_REQUIRED": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": SANDBOX_ACCESS_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": SANDBOX_REFRESH_TOKEN_SECONDS,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,  # a rotated refresh token is refused at once
    "SCOPES": {
        "read": "Read your sandbox items",
        "write": "Change your sandbox items",
        "profile": "See your email address",
    },
    "DEFAULT_SCOPES": ["read"],
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
    "OIDC_ENABLED": False,
    # RFC 9207: the authorization response carries iss=<issuer>, fixed to the public URL so it
    # does not depend on the Host header of the request.
    "OIDC_ISS_ENDPOINT": SANDBOX_ISSUER,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    # RFC 9700 gates: refuse what no modern client needs (S256 only, no implicit/password
    # grants, no access token in the query string).
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "client_credentials", "refresh_token"],
}
