"""The security headers, in one place: what EdgeMiddleware adds to every response, and the
Content-Security-Policy of HTML pages.

Every response gets `X-Content-Type-Options: nosniff` (and HSTS when PUBLIC_BASE_URL is https).
An HTML response also gets a strict CSP (scripts and styles only from this origin, no framing,
no plugins, no `<base>`), `X-Frame-Options: DENY` for old browsers and a Referrer-Policy.
Pages that need an inline script they generate themselves (Swagger UI's start-up script) send
their own CSP built by `content_security_policy(script_hashes=...)`: the middleware keeps it.
Inline styles are allowed: ReDoc and Swagger UI set them at run time, and captured emails (the
development mail page) are styled inline; a style cannot run code.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

# One year, with subdomains: sent only when the public URL is https.
# Not includeSubDomains: the API may live on an apex domain whose other hosts are not ours to pin.
HSTS = "max-age=31536000"
# Token pages (verify, reset) carry the token in their URL: never pass it on.
REFERRER_POLICY = "no-referrer"

_INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE
)


def content_security_policy(*, script_hashes: Iterable[str] = ()) -> str:
    """The pages' policy; `script_hashes` ('sha256-...') allow those exact inline scripts."""
    scripts = " ".join(["'self'", *(f"'{h}'" for h in script_hashes)])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def inline_script_hashes(html: str) -> list[str]:
    """The CSP hashes of the inline scripts in `html`. Only for HTML this process generates
    from constants (never a page holding request data: its scripts would be allowed too)."""
    return [
        "sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        for body in _INLINE_SCRIPT.findall(html)
    ]


class SecurityHeaders:
    """The headers to add to a response, by its content type; built once per app. A header the
    response already has (a page's own CSP or Referrer-Policy) is kept, not repeated."""

    def __init__(self, *, https: bool) -> None:
        common = [(b"x-content-type-options", b"nosniff")]
        if https:
            common.append((b"strict-transport-security", HSTS.encode()))
        self.common = common
        self.html = [
            (b"content-security-policy", content_security_policy().encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", REFERRER_POLICY.encode()),
        ]
        self.names = frozenset(key for key, _ in (*self.common, *self.html))

    def extend(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Add to a response's raw headers (lower-case names, as Starlette sends them)."""
        html = False
        present: set[bytes] = set()
        for key, value in headers:
            if key == b"content-type":
                html = value.startswith(b"text/html")
            elif key in self.names:
                present.add(key)
        extra = [*self.common, *self.html] if html else self.common
        headers.extend(h for h in extra if h[0] not in present)
