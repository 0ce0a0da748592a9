"""Set the example up and start it: `python example_project/manage.py demo`."""

import logging
import os
import secrets
import socket
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from django_sendflare.worker import Worker

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Apply migrations, create the demo superuser (printing its password) and demo users, "
        "then serve the example on 127.0.0.1:$PORT (default 8000)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-serve", action="store_true", help="Set everything up but do not start the server."
        )

    def handle(self, *args: Any, no_serve: bool, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        password = os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(9)
        User = get_user_model()
        admin, _ = User.objects.get_or_create(username="admin")
        admin.email = "admin@example.com"
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        call_command("seed_demo_users", stdout=self.stdout)

        url = f"http://127.0.0.1:{settings.PORT}/"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nThe example is set up.\n"
                f"  Open      {url}\n"
                f"  Admin     {url}admin/  user: admin  password: {password}\n"
                + (
                    f"  Sandbox   {url}sandbox/_sandbox/  (sent messages and contacts)\n"
                    if settings.USE_SANDBOX
                    else f"  API       {settings.API_URL or 'the real service'}\n"
                )
            )
        )
        if not no_serve:
            # The worker (queued mail, then contact changes), as `manage.py sendflare_worker`
            # runs it in production; here a thread, so that one command shows everything.
            threading.Thread(target=_worker, name="sendflare-worker", daemon=True).start()
            # No autoreloader: it would run this command, and so reset the password, twice.
            call_command("runserver", f"127.0.0.1:{settings.PORT}", use_reloader=False)


def _worker() -> None:
    if settings.USE_SANDBOX:
        # The sandbox is served by the server that starts next to this thread: wait for it.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", settings.PORT), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
    logger.info("Delivering queued mail and contact changes (the sendflare_worker loop).")
    # One thread: the example runs on SQLite, where writers queue for one lock.
    Worker(interval=1.0, threads=1).run()
