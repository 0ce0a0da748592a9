"""The HTML inspection pages, rendered with the standard library (no Django templates needed).

Everything that came from a request is escaped. A message body is shown twice: as escaped source
text, and rendered in ``<iframe sandbox srcdoc="...">``: an empty ``sandbox`` attribute gives the
frame a unique origin with scripts, forms and navigation off, and the page's Content-Security-Policy
(inherited by srcdoc frames) forbids scripts and remote loads anyway. No script from a message can
run in the sandbox's origin, and no tracking pixel is fetched.

Line breaks in one-line fields (a subject with CR/LF, which the documents do not forbid) are
shown as visible ``\r`` / ``\n`` marks rather than folded away by the browser.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

#: Sent with every page: no scripts at all, no remote resources, no framing by others.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}nav a{margin-right:1rem}
pre{white-space:pre-wrap;word-break:break-word;background:#f8f8f8;padding:.8rem}
iframe{width:100%;height:28rem;border:1px solid #ccc}.muted{color:#777}
.mark{color:#b00;font-family:monospace}
"""

#: Rows of one appId on the contacts page: a million would make a page no browser can show.
MAX_CONTACT_ROWS = 1000

#: The address lists a send may carry besides ``to``, with their labels.
_LISTS = (("cc", "Cc"), ("bcc", "Bcc"), ("replyTo", "Reply-To"))


def _line(text: str) -> str:
    """Escape one-line text, showing any CR or LF in it as a visible mark."""
    escaped = escape(text)
    for char, mark in (("\r", "\\r"), ("\n", "\\n")):
        escaped = escaped.replace(char, f"<span class='mark'>{mark}</span>")
    return escaped


def _copies(message: dict[str, Any]) -> str:
    """The message's non-empty cc / bcc / replyTo lists on one line, or ""."""
    parts = [
        f"{label}: {escape(', '.join(message[key]))}" for key, label in _LISTS if message.get(key)
    ]
    return f"<br><span class='muted'>{'; '.join(parts)}</span>" if parts else ""


def _page(title: str, base: str, content: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)} - Sendflare sandbox</title><style>{_STYLE}</style></head><body>"
        f"<nav><a href='{escape(base)}'>Inbox</a><a href='{escape(base)}contacts'>Contacts</a>"
        f"<a href='{escape(base)}api/requests'>Request log (JSON)</a></nav>"
        f"<h1>{escape(title)}</h1>{content}"
        "<p class='muted'>Local emulator: nothing here was sent to anyone. State is kept in memory "
        "only.</p></body></html>"
    )


def inbox(messages: list[dict[str, Any]], base: str) -> str:
    """The list of sent messages, newest first."""
    if not messages:
        return _page("Inbox", base, "<p>No messages yet.</p>")
    rows = []
    for message in reversed(messages):
        link = f"{base}messages/{quote(message['id'], safe='')}"
        rows.append(
            "<tr>"
            f"<td>{escape(message['receivedAt'])}</td>"
            f"<td>{_line(message['from'])}</td>"
            f"<td>{_line(message['to'])}{_copies(message)}</td>"
            f"<td><a href='{escape(link)}'>{_line(message['subject'])}</a></td>"
            f"<td class='muted'>{escape(message['requestId'])}</td>"
            "</tr>"
        )
    table = (
        "<table><tr><th>Received (UTC)</th><th>From</th><th>To</th><th>Subject</th>"
        f"<th>requestId</th></tr>{''.join(rows)}</table>"
    )
    return _page(f"Inbox ({len(messages)})", base, table)


def message_page(message: dict[str, Any], base: str) -> str:
    """One message: headers, the body rendered in a sandboxed frame, and its escaped source."""
    body = message["body"]
    # escape(quote=True) makes the body a safe attribute value; the browser un-escapes it once
    # into the frame's document, which is sandboxed (no scripts, unique origin).
    frame = f"<iframe sandbox='' title='Message body' srcdoc='{escape(body, quote=True)}'></iframe>"
    lists = "".join(
        f"<tr><th>{label}</th><td>{escape(', '.join(message[key]))} <span class='muted'>"
        "(recorded only: the documents do not say what the API does with it)</span></td></tr>"
        for key, label in _LISTS
        if message.get(key)
    )
    content = (
        "<table>"
        f"<tr><th>From</th><td>{_line(message['from'])}</td></tr>"
        f"<tr><th>To</th><td>{_line(message['to'])}</td></tr>"
        f"{lists}"
        f"<tr><th>Subject</th><td>{_line(message['subject'])}</td></tr>"
        f"<tr><th>Received (UTC)</th><td>{escape(message['receivedAt'])}</td></tr>"
        f"<tr><th>requestId</th><td>{escape(message['requestId'])}</td></tr>"
        f"<tr><th>Token</th><td>{escape(message['token'])}</td></tr>"
        "</table>"
        f"<h2>Rendered (sandboxed, scripts off)</h2>{frame}"
        f"<h2>Source</h2><pre>{escape(body)}</pre>"
    )
    return _page(message["subject"], base, content)


def contacts_page(
    apps: dict[str, list[dict[str, Any]]], base: str, totals: dict[str, int] | None = None
) -> str:
    """The contacts of every appId (``totals``: how many each has, when more are not shown)."""
    if not apps:
        return _page("Contacts", base, "<p>No contacts yet.</p>")
    sections = []
    for app_id, contacts in apps.items():
        if not contacts:
            continue
        columns = [name for name in contacts[0] if name != "statusDefaulted"]
        head = "".join(f"<th>{escape(name)}</th>" for name in columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_cell(c, name)}</td>" for name in columns) + "</tr>"
            for c in contacts
        )
        total = (totals or {}).get(app_id, len(contacts))
        more = (
            f"<p class='muted'>The first {len(contacts):,} of {total:,}: the list endpoint and "
            "the inspection API give them all.</p>"
            if total > len(contacts)
            else ""
        )
        sections.append(
            f"<h2>appId {escape(app_id)} ({total:,})</h2>{more}<table><tr>{head}</tr>{rows}</table>"
        )
    return _page("Contacts", base, "".join(sections) or "<p>No contacts yet.</p>")


def _cell(contact: dict[str, Any], name: str) -> str:
    text = escape(str(contact[name]))
    if name == "status" and contact.get("statusDefaulted"):
        # Created without a status: the sandbox's assumption, not something the client sent.
        text += " <span class='muted'>(default: the save sent no status)</span>"
    return text


def not_found(base: str) -> str:
    """A 404 page."""
    return _page("Not found", base, "<p>There is nothing here.</p>")
