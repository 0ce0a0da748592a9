"""The API client on its own, without the backend (included in the docs).

``tests/test_docs_examples.py`` runs :func:`tour` against the sandbox.
"""

from django_sendflare.client import SendflareClient


def tour(api_url: str, token: str) -> list[str]:
    """Send a message, create a contact, list the contacts, delete the contact."""
    client = SendflareClient(token, api_url=api_url, app_id="123")
    try:
        response = client.send(
            from_email="a@example.com", to="b@example.com", subject="Hi", body="<p>Hi</p>"
        )
        print("sent, requestId", response.request_id)
        client.save_contact(email="c@example.com", status="Confirmed", data={"firstName": "C"})
        listed = []
        for contact in client.iter_contacts():  # every page
            listed.append(contact["emailAddress"])
            print(contact["emailAddress"], contact["status"])
        client.delete_contact(email="c@example.com")
        return listed
    finally:
        client.close()  # the pooled connections
