"""The contact actions on a project's own user admin (included in the docs).

``tests/test_docs_examples.py`` checks that the admin offers both actions.
"""

from django.contrib.auth.admin import UserAdmin

from django_sendflare.admin import SendflareUserAdminMixin


# Register it for your user model: admin.site.register(MyUser, MyUserAdmin), or
# @admin.register(MyUser) above the class.
class MyUserAdmin(SendflareUserAdminMixin, UserAdmin):
    list_display = (*UserAdmin.list_display, "date_joined")
