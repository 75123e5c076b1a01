"""Settings for the portico example site; everything deployment-specific comes from the environment.

    DJANGO_SECRET_KEY     signing key (an insecure development default is used when unset)
    DJANGO_DEBUG          1/true/yes/on for debug pages (default off, as in production)
    DJANGO_ALLOWED_HOSTS  comma-separated host names (default "*": the example answers any Host)
    DATABASE_URL          postgres://user:pass@host:port/name; SQLite in db.sqlite3 when unset
    REDIS_URL             redis://host:6379/0 for the cache and sessions (python3-django-redis),
                          so that several hosts behind a load balancer share them; unset: a
                          per-process memory cache and sessions in the database
"""

import os
from pathlib import Path

from mysite import database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_flag(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY",
                            "django-insecure-portico-example-only-never-use-in-production")
DEBUG = _env_flag("DJANGO_DEBUG")
ALLOWED_HOSTS = [host.strip() for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",")
                 if host.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "catalog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mysite.wsgi.application"

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": database_url.parse(os.environ["DATABASE_URL"])}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
# Keeping connections open across requests matters under a long-lived server like portico.
DATABASES["default"].setdefault("CONN_MAX_AGE", int(os.environ.get("DJANGO_CONN_MAX_AGE", "60")))

# Hosts behind a load balancer share the cache (the visit counter) and the sessions through
# Redis; sessions stay in the database too (cached_db), so a Redis restart logs nobody out.
if os.environ.get("REDIS_URL"):
    CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                          "LOCATION": os.environ["REDIS_URL"],
                          "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2}}}
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_L10N = True
USE_TZ = True

# portico serves collectstatic's output itself: --static /static/=staticfiles/
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Without DEBUG, Django would mail request errors to ADMINS; the example writes them to stderr,
# which portico keeps in its error log.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING")}},
}
