"""The requests the providers' seven official SDKs send, written down as test data.

Read (never copied) from the public sources of github.com/sendflare/sendflare-sdk-{python, go,
ts, php, java, rust, csharp}, at the newest commits the project's code store held on
2026-12-04 (listed in :data:`SOURCES`). Each body is the exact JSON text that SDK's serialiser
produces for the same call, escapes included: Go and Java escape ``<``, ``>`` and ``&`` (Java
also ``=`` and ``'``), C# every non-ASCII and HTML-sensitive character, PHP ``/`` and non-ASCII,
Python non-ASCII with ``", "`` separators; TypeScript and Rust escape nothing they need not.
Query strings are in each SDK's order (Java's comes from a HashMap: an undocumented order).

The same call everywhere: send from@example.com -> to@example.com with :data:`SUBJECT` and
:data:`BODY`; save ann@example.com in app-1 with firstName "Ann" and vipLevel 2 (a string in
every SDK's model but PHP's, whose arrays keep an int); list app-1 as each SDK does when its
caller gives no page (or the SDK's own defaults); delete ann@example.com.
docs/explanation/sandbox-fidelity.rst says what each difference means.
"""

from __future__ import annotations

from dataclasses import dataclass

SUBJECT = "Hello <World> & you"
BODY = "<p>Caf\N{LATIN SMALL LETTER E WITH ACUTE} / 5\N{EURO SIGN}</p>"

#: repository -> (commit, date) read.
SOURCES = {
    "python": ("sendflare/sendflare-sdk-python", "355b345c66ce", "2025-12-16"),
    "go": ("sendflare/sendflare-sdk-go", "4d2a07f3495b", "2026-01-20"),
    "typescript": ("sendflare/sendflare-sdk-ts", "f29665924040", "2025-12-16"),
    "php": ("sendflare/sendflare-sdk-php", "381d9e47306a", "2026-03-18"),
    "java": ("sendflare/sendflare-sdk-java", "960194d4967c", "2026-03-31"),
    "rust": ("sendflare/sendflare-sdk-rust", "1473eac9a48b", "2026-01-20"),
    "csharp": ("sendflare/sendflare-sdk-csharp", "6f54ba9551d1", "2026-02-05"),
}


@dataclass(frozen=True)
class SdkRequest:
    """One request as one SDK sends it."""

    sdk: str
    operation: str  # send | save | save_without_data | list | delete
    method: str
    query: str = ""
    body: str | None = None
    content_type: str = "application/json"

    @property
    def path(self) -> str:
        return "/v1/send" if self.operation == "send" else "/v1/contact"


_SAVE_PLAIN = '{"appId":"app-1","emailAddress":"ann@example.com"}'
_SAVE_DATA = (
    '{"appId":"app-1","emailAddress":"ann@example.com","data":{"firstName":"Ann","vipLevel":"2"}}'
)
_DELETE = "appId=app-1&emailAddress=ann%40example.com"

REQUESTS: tuple[SdkRequest, ...] = (
    # Python: json.dumps defaults (ASCII only, ", " and ": "); urlencode; PaginateReq page 1, 10.
    SdkRequest(
        "python",
        "send",
        "POST",
        body='{"from": "from@example.com", "to": "to@example.com", '
        '"subject": "Hello <World> & you", "body": "<p>Caf\\u00e9 / 5\\u20ac</p>"}',
    ),
    SdkRequest(
        "python",
        "save",
        "POST",
        body='{"appId": "app-1", "emailAddress": "ann@example.com", '
        '"data": {"firstName": "Ann", "vipLevel": "2"}}',
    ),
    SdkRequest(
        "python",
        "save_without_data",
        "POST",
        body='{"appId": "app-1", "emailAddress": "ann@example.com"}',
    ),
    SdkRequest("python", "list", "GET", query="appId=app-1&page=1&pageSize=10"),
    SdkRequest("python", "delete", "DELETE", query=_DELETE),
    # Go: encoding/json (HTML-escaping, map keys sorted, data omitted when empty); zero pages.
    SdkRequest(
        "go",
        "send",
        "POST",
        body='{"from":"from@example.com","to":"to@example.com",'
        '"subject":"Hello \\u003cWorld\\u003e \\u0026 you",'
        '"body":"\\u003cp\\u003eCaf\N{LATIN SMALL LETTER E WITH ACUTE} / 5\N{EURO SIGN}'
        '\\u003c/p\\u003e"}',
    ),
    SdkRequest("go", "save", "POST", body=_SAVE_DATA),
    SdkRequest("go", "save_without_data", "POST", body=_SAVE_PLAIN),
    SdkRequest("go", "list", "GET", query="appId=app-1&page=0&pageSize=0"),
    SdkRequest("go", "delete", "DELETE", query=_DELETE),
    # TypeScript: JSON.stringify of the caller's object; page and pageSize are required.
    SdkRequest(
        "typescript",
        "send",
        "POST",
        body='{"from":"from@example.com","to":"to@example.com",'
        f'"subject":"{SUBJECT}","body":"{BODY}"}}',
    ),
    SdkRequest("typescript", "save", "POST", body=_SAVE_DATA),
    SdkRequest("typescript", "save_without_data", "POST", body=_SAVE_PLAIN),
    SdkRequest("typescript", "list", "GET", query="appId=app-1&page=1&pageSize=100"),
    SdkRequest("typescript", "delete", "DELETE", query=_DELETE),
    # PHP: json_encode defaults (\/ and \uXXXX); cc and bcc always, as [] when empty; an int
    # stays an int in data; http_build_query; ListContactReq page 1, pageSize 10.
    SdkRequest(
        "php",
        "send",
        "POST",
        body='{"from":"from@example.com","to":"to@example.com",'
        '"subject":"Hello <World> & you","body":"<p>Caf\\u00e9 \\/ 5\\u20ac<\\/p>",'
        '"cc":[],"bcc":[]}',
    ),
    SdkRequest(
        "php",
        "save",
        "POST",
        body='{"appId":"app-1","emailAddress":"ann@example.com",'
        '"data":{"firstName":"Ann","vipLevel":2}}',
    ),
    # new SaveContactReq($appId, $email, []): an empty PHP array encodes as a JSON list.
    SdkRequest(
        "php",
        "save_without_data",
        "POST",
        body='{"appId":"app-1","emailAddress":"ann@example.com","data":[]}',
    ),
    SdkRequest("php", "list", "GET", query="appId=app-1&page=1&pageSize=10"),
    SdkRequest("php", "delete", "DELETE", query=_DELETE),
    # Java: Gson (HTML-safe escapes, nulls left out); cc, bcc and replyTo lists since
    # 2026-03-10; a no-argument ListContactReq sends zeros; query order from a HashMap.
    SdkRequest(
        "java",
        "send",
        "POST",
        body='{"from":"from@example.com","to":"to@example.com",'
        '"subject":"Hello \\u003cWorld\\u003e \\u0026 you",'
        '"body":"\\u003cp\\u003eCaf\N{LATIN SMALL LETTER E WITH ACUTE} / 5\N{EURO SIGN}'
        '\\u003c/p\\u003e","cc":["copy@example.com"],"bcc":[],"replyTo":["reply@example.com"]}',
    ),
    SdkRequest("java", "save", "POST", body=_SAVE_DATA),
    SdkRequest("java", "save_without_data", "POST", body=_SAVE_PLAIN),
    SdkRequest("java", "list", "GET", query="appId=app-1&pageSize=0&page=0"),
    SdkRequest("java", "delete", "DELETE", query="emailAddress=ann%40example.com&appId=app-1"),
    # Rust: serde_json (no escapes beyond JSON's); data left out when None; page given.
    SdkRequest(
        "rust",
        "send",
        "POST",
        body='{"from":"from@example.com","to":"to@example.com",'
        f'"subject":"{SUBJECT}","body":"{BODY}"}}',
    ),
    SdkRequest("rust", "save", "POST", body=_SAVE_DATA),
    SdkRequest("rust", "save_without_data", "POST", body=_SAVE_PLAIN),
    SdkRequest("rust", "list", "GET", query="appId=app-1&page=1&pageSize=50"),
    SdkRequest("rust", "delete", "DELETE", query=_DELETE),
    # C#: System.Text.Json defaults (\u003C..., non-ASCII escaped, "data":null when unset);
    # a new ListContactReq sends zeros; the body's type carries charset=utf-8.
    SdkRequest(
        "csharp",
        "send",
        "POST",
        body='{"from":"from@example.com","to":"to@example.com",'
        '"subject":"Hello \\u003CWorld\\u003E \\u0026 you",'
        '"body":"\\u003Cp\\u003ECaf\\u00E9 / 5\\u20AC\\u003C/p\\u003E"}',
        content_type="application/json; charset=utf-8",
    ),
    SdkRequest(
        "csharp", "save", "POST", body=_SAVE_DATA, content_type="application/json; charset=utf-8"
    ),
    SdkRequest(
        "csharp",
        "save_without_data",
        "POST",
        body='{"appId":"app-1","emailAddress":"ann@example.com","data":null}',
        content_type="application/json; charset=utf-8",
    ),
    SdkRequest("csharp", "list", "GET", query="appId=app-1&page=0&pageSize=0"),
    SdkRequest("csharp", "delete", "DELETE", query=_DELETE),
)

#: How each SDK reads the list answer, and which HTTP statuses it raises on (None: it decodes
#: the body whatever the status). The sandbox answers the documented shape plus totalCount.
LIST_READING = {
    "python": ("data.{page, pageSize, totalCount, list}", 400),
    "go": ("page/pageSize/totalCount beside the envelope, data as one string map", None),
    "typescript": ("{page, pageSize, totalCount, list} (typed; returns the envelope)", 300),
    "php": ("data.{page, pageSize, totalCount, list}", 400),
    "java": ("data.{page, pageSize, totalCount, list} of string maps", None),
    "rust": ("{page, pageSize, totalCount, list} of string maps, no envelope", 300),
    "csharp": ("page/pageSize/totalCount beside the envelope, data as a list", 300),
}
