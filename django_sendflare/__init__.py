"""Django email backend, contact sync and local sandbox for the Sendflare / SendKit API."""

__version__ = "0.1.0"
