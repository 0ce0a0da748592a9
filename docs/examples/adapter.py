"""A contact adapter for a project whose users have a profile (included in the docs).

``tests/test_docs_examples.py`` maps users with it.
"""

from django_sendflare.contacts.adapter import ContactAdapter


class MyAdapter(ContactAdapter):
    # The data fields this adapter manages: only these are compared and sent.
    fields = ("firstName", "lastName", "language", "birthday", "vipLevel")

    def get_queryset(self):
        return super().get_queryset().select_related("profile")

    def get_data(self, user):
        return {
            "firstName": user.first_name,
            "lastName": user.last_name,
            "language": user.profile.language,
            "birthday": user.profile.birthday,  # a date: sent as DD/MM
            "vipLevel": user.profile.level,  # a number: sent as "2"
        }

    def get_status(self, user):
        return "Confirmed" if user.profile.newsletter else "Unsubscribed"

    def should_sync(self, user):
        return super().should_sync(user) and not user.is_staff
