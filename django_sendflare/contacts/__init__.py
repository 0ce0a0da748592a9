"""Keeping Django users in sync with Sendflare contacts."""
