"""Who may use the console, checked before any route runs.

- **Host**: on loopback, only the names of this machine (127.0.0.1, localhost, [::1]) are served, at any port (an
  SSH tunnel may forward another), so a web page cannot rebind its own DNS name onto the console.
- **Origin**: a request that changes anything (every method but GET and HEAD) must come from the console's own
  page: a browser sends `Origin` (or `Sec-Fetch-Site`) with it, and another site's page gets a 403.
- **Another site**: a page of another site may link to the console (a navigation), never fetch from it: an
  `<img>` of the live view would keep the camera's preview running, a script could read the state. Browsers say
  who asks in `Sec-Fetch-Site`; a cross-site request that is not a navigation gets a 403, whatever its method.
- **Framing**: every response forbids being framed (`X-Frame-Options: DENY`, CSP `frame-ancestors 'none'`), so
  no page can overlay the console's buttons; the page's Content-Security-Policy allows its own scripts, styles
  and images only.
- **Token**: when `console.token` is set, every request carries it, as `Authorization: Bearer TOKEN`, as the
  cookie the page sets after it was opened once with `?token=TOKEN`, or as that query itself.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode

from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medianscan.config.listen import LOOPBACK_NAMES, Listen

COOKIE = "medianscan_console"
SAFE_METHODS = frozenset({"GET", "HEAD"})
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_PORT = re.compile(r"^\d{1,5}$")


class Guard:
    """ASGI middleware in front of the console's routes; `port` gives the port actually bound."""

    def __init__(self, app: ASGIApp, listen: Listen, port: Callable[[], int], token: str | None) -> None:
        self.app = app
        self.listen = listen
        self.port = port
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_guarded)
            return
        await self.app(scope, receive, send_guarded)

    def refusal(self, scope: Scope) -> Response | None:
        """The response that refuses this request, or None to let it through."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        return (
            self._wrong_host(headers)
            or self._from_another_site(headers)
            or self._wrong_origin(scope, headers)
            or self._no_token(scope, headers)
        )

    def _wrong_host(self, headers: dict[str, str]) -> Response | None:
        if self.listen.loopback and _host_name(headers.get("host", "")) not in self.loopback_names():
            return _refuse(421, f"this console answers to 127.0.0.1:{self.port()} or localhost:{self.port()} only")
        return None

    def _from_another_site(self, headers: dict[str, str]) -> Response | None:
        """A browser fetching for another site's page (an <img>, a script's fetch): refused; following a link
        to the console (a navigation) is fine."""
        site = headers.get("sec-fetch-site", "none")
        if site not in SAME_SITE_FETCHES and headers.get("sec-fetch-mode") != "navigate":
            return _refuse(403, "another site's page may not fetch from this console")
        return None

    def _wrong_origin(self, scope: Scope, headers: dict[str, str]) -> Response | None:
        if scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and origin.lower() != f"http://{headers.get('host', '').lower()}":
            return _refuse(403, f"a request from {origin} may not change anything here")
        if origin is None and headers.get("sec-fetch-site", "none") not in SAME_SITE_FETCHES:
            return _refuse(403, "a request from another site may not change anything here")
        return None

    def _no_token(self, scope: Scope, headers: dict[str, str]) -> Response | None:
        if self.token is None:
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        offered = [
            headers.get("authorization", "").removeprefix("Bearer ").strip(),
            _cookie(headers.get("cookie", "")),
            *(query.get("token") or []),
        ]
        if not any(o and hmac.compare_digest(o.encode(), self.token.encode()) for o in offered):
            return _refuse(401, "this console needs its token: open it once as http://HOST:PORT/?token=TOKEN")
        if query.get("token") and scope["method"] == "GET":  # keep it as a cookie, and out of the address bar
            rest = urlencode({k: v for k, v in query.items() if k != "token"}, doseq=True)
            redirect = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
            redirect.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return redirect
        return None

    def loopback_names(self) -> set[str]:
        return {*LOOPBACK_NAMES, "127.0.0.1", "::1", self.listen.host.lower()}


def _host_name(host: str) -> str | None:
    """The name of a Host header without its port ('localhost:8631' -> 'localhost', '[::1]:80' -> '::1'), or None
    when it is not a well-formed host (a port that is no number, anything after an IPv6 literal's bracket)."""
    host = host.strip().lower()
    if host.startswith("["):
        inside, _, rest = host[1:].partition("]")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            return None
        return inside if rest == "" or (rest.startswith(":") and _PORT.match(rest[1:])) else None
    name, colon, port = host.partition(":")
    if colon and not _PORT.match(port):
        return None
    return name if name and re.fullmatch(r"[a-z0-9.-]+", name) else None


def _cookie(header: str) -> str:
    """Our cookie's value in a Cookie header, read pair by pair: another application's cookie on this host
    (cookies ignore ports) that a strict parser refuses must not hide ours."""
    for pair in header.split(";"):
        name, equals, value = pair.strip().partition("=")
        if equals and name.strip() == COOKIE:
            return value.strip().strip('"')
    return ""


def _refuse(status: int, reason: str) -> Response:
    return PlainTextResponse(reason + "\n", status_code=status)
