"""Create a handful of demo users (idempotent)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

NAMES = [
    ("Ada", "Lovelace"),
    ("Alan", "Turing"),
    ("Grace", "Hopper"),
    ("Edsger", "Dijkstra"),
    ("Barbara", "Liskov"),
    ("Donald", "Knuth"),
    ("Frances", "Allen"),
    ("Ken", "Thompson"),
    ("Margaret", "Hamilton"),
    ("Dennis", "Ritchie"),
    ("Radia", "Perlman"),
    ("John", "McCarthy"),
]


class Command(BaseCommand):
    help = "Create demo users with names and emails (existing ones are left alone)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=len(NAMES), help="How many (at most 12).")

    def handle(self, *args: Any, count: int, **options: Any) -> None:
        User = get_user_model()
        created = 0
        for first, last in NAMES[:count]:
            username = first.lower()
            _, was_created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}.{last.lower()}@example.com",
                },
            )
            created += was_created
        self.stdout.write(f"Demo users: {created} created, {count - created} already there.")
