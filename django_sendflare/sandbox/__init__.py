"""A local, in-memory emulator of the Sendflare / SendKit HTTP API.

It is written from the published API documents only (never from this package's client), so that the
client and the sandbox cannot share a misreading of the documents. It runs mounted in a URLconf,
standalone (``python -m django_sendflare.sandbox``) or inside pytest (the ``sendflare_sandbox``
fixture). It keeps everything in memory and never forwards mail anywhere.

This module imports nothing from Django, so the standalone server works without a Django project.
"""

from django_sendflare.sandbox.engine import Sandbox, SandboxConfig, SandboxRequest, SandboxResponse
from django_sendflare.sandbox.faults import FaultSettings

__all__ = ["FaultSettings", "Sandbox", "SandboxConfig", "SandboxRequest", "SandboxResponse"]
