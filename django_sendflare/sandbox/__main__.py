"""Entry point of ``python -m django_sendflare.sandbox``."""

import sys

from django_sendflare.sandbox.cli import main

sys.exit(main())
