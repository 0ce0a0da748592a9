"""Sphinx configuration of the django-sendflare documentation.

Build it with ``pip install -e ".[docs]"`` and
``sphinx-build -W --keep-going -n docs docs/_build/html`` (what CI runs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import django
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
# The source tree first, so that autodoc documents this checkout even when another copy is
# installed.
sys.path.insert(0, str(ROOT))

# autodoc imports the modules, and Django's models and admin need configured settings: the
# smallest project that installs the app (no database is touched).
if not settings.configured:
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django_sendflare",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SENDFLARE={"API_TOKEN": "docs-build"},
        USE_TZ=True,
    )
    django.setup()

import django_sendflare  # noqa: E402 - needs the settings above

project = "django-sendflare"
author = "django-sendflare developers"
copyright = "django-sendflare developers"
release = django_sendflare.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

# The providers' documents are read by the tests (tests/sandbox/test_curl_examples.py), not built;
# the examples are included into pages with literalinclude.
exclude_patterns = ["_build", "provider-api", "examples", "**/README.md"]
root_doc = "index"
default_role = "code"

# Every internal reference must resolve (``-n`` on the command line, and here for local builds).
nitpicky = True
# Types of other projects: there is no network in CI, so no intersphinx inventories; their names
# are left unlinked instead of warned about.
nitpick_ignore_regex = [
    (r"py:.*", r"(django|requests|redis|urllib3|pytest|_pytest)\..*"),
    (r"py:.*", r"(datetime|collections|typing|abc)\..*"),
    (r"py:.*", r"(Any|Callable|Iterator|Iterable|Mapping|Sequence|Literal|Self|TypeAlias)"),
    (r"py:.*", r"(Path|pathlib\.Path|threading\..*|logging\..*|argparse\..*|enum\..*|uuid\..*)"),
    (r"py:.*", r"(QuerySet|Model|HttpRequest|HttpResponse|EmailMessage|ModelAdmin|AdminSite)"),
    (r"py:.*", r"(RecipientState|NoneType|T|_ModelAdmin|ContactDict)"),
    # Internal classes that appear in public signatures; what they hold is documented in prose
    # (the settings reference, the client's keyword arguments), not as API.
    (r"py:class", r"(django_sendflare\.(conf(\.table)?|retry)\.)?(SendflareSettings|RetryPolicy)"),
    (r"py:class", r"(django_sendflare\.sandbox\.server\.)?SandboxHTTPServer"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}

html_theme = "furo"
html_title = f"django-sendflare {release}"
html_static_path: list[str] = []
