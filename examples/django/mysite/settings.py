"""A minimal Django project for hostguard's examples and end-to-end tests.

The three lines that matter read the allow list from the environment, where
`hostguard exec --allow lhy.kr,@self --env DJANGO_ALLOWED_HOSTS -- ...` puts it.
"""
import os

# --- the three-line change -------------------------------------------------
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h]
# ---------------------------------------------------------------------------

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {}
USE_TZ = True

# Log rejected hosts to stderr ("Invalid HTTP_HOST header: ..."), which
# Django does not do with DEBUG off.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.security.DisallowedHost": {"handlers": ["stderr"], "level": "ERROR"}},
}
