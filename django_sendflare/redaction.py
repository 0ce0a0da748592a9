"""Masking secrets in text we print: URLs in check messages, log lines and exception texts.

:func:`mask_url` works on the text, not on a parsed URL, so that it also masks what a URL parser
refuses (a bad port, an unbalanced ``[``, a password with an unencoded ``/`` or ``@``): a
malformed URL is exactly what an error message shows. It never raises. A password containing an
unencoded ``?`` or ``#`` cannot be told from a query or a fragment: percent-encode it.
"""

from __future__ import annotations

import re

MASK = "***"

# The userinfo: everything between "//" and the LAST "@" before the query or fragment. RFC 3986
# forbids an unencoded "/" or "@" in it, but generated passwords have them (base64 has "/") and
# people paste them unencoded; stopping at the first "/" would print such a password in full.
# The price: an "@" in a path ("https://host/@scope/x") masks the host too, never too little.
_USERINFO = re.compile(r"(?P<start>//)(?P<userinfo>[^?#]*)@")

# Query or fragment parameters whose name says they carry a secret: token, access_token,
# api_key, apikey, key, secret, client_secret, password, passwd, pwd, auth, authorization,
# signature, sig, credential(s), session, sessionid...
_SENSITIVE_NAME = r"[^=&#;?]*(?:token|key|secret|pass|pwd|auth|sig|credential|session)[^=&#;?]*"
_SECRET_PARAMETER = re.compile(
    rf"(?P<name>[?&#;]{_SENSITIVE_NAME}=)(?P<value>[^&#;]*)",
    re.IGNORECASE,
)


def mask_url(url: object) -> str:
    """Return ``url`` as text with its credentials replaced by ``***``.

    ``https://user:pw@host/path?api_key=abc&page=2`` becomes
    ``https://***:***@host/path?api_key=***&page=2``: the user name is masked too (some
    services take the token as the user name), the host, path and other parameters are kept so
    that the message still says which URL is wrong.
    """
    text = url if isinstance(url, str) else str(url)
    text = _USERINFO.sub(_mask_userinfo, text, count=1)
    return _SECRET_PARAMETER.sub(lambda m: m["name"] + (MASK if m["value"] else ""), text)


def _mask_userinfo(match: re.Match[str]) -> str:
    masked = f"{MASK}:{MASK}" if ":" in match["userinfo"] else MASK
    return f"{match['start']}{masked}@"


def error_text(error: BaseException, *secrets: str) -> str:
    """The text of an exception nobody expected, fit for a log line or our own error.

    URL credentials are masked, and so is each of ``secrets`` (e.g. the API token): a library's
    message may repeat what it was given (a Redis URL with its password, a header).
    """
    text = mask_url(str(error))
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
