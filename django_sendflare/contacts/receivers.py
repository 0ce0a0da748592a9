"""post_save / post_delete of the user model -> outbox (placeholder until contacts land)."""


def connect_receivers() -> None:
    """Connect the user-model receivers."""
