"""Settings of a worker run as a separate process by the tests: the test database, the sandbox.

The test passes the database (``DATABASE_URL``) and the SENDFLARE dict (JSON in
``SENDFLARE_TEST_JSON``) through the environment.
"""

import json
import os

from tests.settings import *  # noqa: F403

SENDFLARE = json.loads(os.environ["SENDFLARE_TEST_JSON"])

if os.environ.get("SENDFLARE_TEST_TASKS") == "db":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
