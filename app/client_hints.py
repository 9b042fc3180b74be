"""The visitor's viewport before the page exists: the right layout in the first document.

The layout (:meth:`gle_lab.main.Dashboard.effective_mode`: "present" below 1600 px, "phone"
up to 480 px, "wide" above) depends on the browser window, which the page itself reports
only once it has loaded (``assets/js/page.js``). A session built on a guess and switched
afterwards costs the browser a full re-layout of every view (~0.7 s of its main thread on a
1280×720 projector page, this 2-core machine) before the first trace moves. Two ways tell
the server earlier:

- **Client hints** (Chromium-based browsers, in a secure context: https, or localhost): a
  page response carries ``Accept-CH: Sec-CH-Viewport-Width, Sec-CH-Viewport-Height``, and
  ``Critical-CH`` with them when the request lacked them: the browser then repeats the
  request at once with the two headers (RFC 8942; the repeat costs one round trip) and every
  later request to this server carries them. The first, hint-less request of a Chromium
  browser is answered by :func:`placeholder` (one small document, no dashboard built: a class
  arriving does not build every session twice).
- **A cookie** (every browser): :data:`COOKIE_SCRIPT`, first in the page's ``<head>``, stores
  ``gle_viewport=<width>x<height>``; a later visit, a reload and the websocket that builds a
  ``--reuse-sessions`` session (Chromium sends client hints on page and resource requests,
  not on a websocket's handshake) carry it. With ``--reuse-sessions`` this is the whole way
  (no request is repeated: the first request of a preset builds the cached page every later
  one is rendered from, and its visitor gets the guessed layout).

A phone says so in its user agent ("Mobi") and needs neither. A browser that repeats
nothing sees :func:`placeholder`'s page, which stores the cookie and reloads. A stale value (a resized
window) costs what the guess costs today: the page's report corrects it.
"""
from __future__ import annotations

import re

from tornado.web import OutputTransform

WIDTH, HEIGHT = "Sec-CH-Viewport-Width", "Sec-CH-Viewport-Height"
ACCEPT_CH = f"{WIDTH}, {HEIGHT}"
COOKIE = "gle_viewport"
#: a viewport beyond these is not a browser window (a forged header): ignored
MAX_SIDE = 16384
#: first in the page's <head>: the window's size in a cookie before any request of the page
_STORE_JS = ("try{document.cookie='" + COOKIE + "='+innerWidth+'x'+innerHeight+"
             "';path=/;max-age=31536000;SameSite=Lax'}catch(e){}")
COOKIE_SCRIPT = "<script>" + _STORE_JS + "</script>"


def _first(value):
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value


def _size(width, height):
    try:
        w, h = int(float(width)), int(float(height))
    except (TypeError, ValueError):
        return None
    return (w, h) if 0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE else None


def _header(headers, name):
    if not headers:
        return None
    value = headers.get(name)
    if value is None:                       # a plain dict from a proxy: any case
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return _first(value)


def _cookie(cookies, name):
    value = cookies.get(name) if cookies else None
    return _first(getattr(value, "value", value))      # http.cookies.Morsel or str


def viewport(headers=None, cookies=None):
    """The visitor's ``(width, height)`` in CSS pixels from the request's client hints, else
    from the :data:`COOKIE`; None when neither says (or says nonsense)."""
    size = _size(_header(headers, WIDTH), _header(headers, HEIGHT))
    if size is not None:
        return size
    text = _cookie(cookies, COOKIE)
    if text and "x" in str(text):
        return _size(*str(text).lower().split("x", 1))
    return None


#: the first Chromium release sending both viewport hints and honouring ``Critical-CH``
#: (Sec-CH-Viewport-Height arrived last, in 108); an older one gets the guessed layout
CRITICAL_CH_SINCE = 108


def chromium_version(brands):
    """The Chromium major version in a ``Sec-CH-UA`` value (``"Chromium";v="156", ...``;
    Chrome, Edge, Opera and Brave all list it), 0 if absent."""
    m = re.search(r'"Chromium";\s*v="(\d+)', brands or "")
    return int(m.group(1)) if m else 0


def session_viewport(request):
    """:func:`viewport` for the request that opened a Bokeh session (its
    ``session_context.request``). Bokeh gives a session the page request's headers and
    cookies (from its token), also when the session is built at its websocket
    (``--reuse-sessions``); that page may have been the visitor's first, before the cookie
    existed, so the websocket's own request (which carries it) is read as well."""
    if request is None:
        return None
    size = viewport(getattr(request, "headers", None), getattr(request, "cookies", None))
    raw = getattr(request, "_request", None)     # Bokeh's _RequestProxy: the raw request
    if size is None and raw is not None:
        size = viewport(getattr(raw, "headers", None), getattr(raw, "cookies", None))
    return size


def wants_hints(method, path, headers, cookies):
    """True for a page request the browser will repeat with the viewport hints once it is
    asked to (``Critical-CH``): a Chromium-based browser (it sends ``Sec-CH-UA`` only where it
    also sends the viewport hints: a secure context) on a desktop, whose request carries
    neither the hints nor the :data:`COOKIE`. Never the websocket (it cannot be repeated)."""
    if method != "GET" or path.endswith("/ws") or _header(headers, "Sec-CH-UA") is None:
        return False
    if _header(headers, "Sec-CH-UA-Mobile") == "?1":
        return False                                       # a phone: its user agent says so
    if chromium_version(_header(headers, "Sec-CH-UA")) < CRITICAL_CH_SINCE:
        return False
    return viewport(headers, cookies) is None


def request_wants_hints(request):
    """:func:`wants_hints` for a Tornado ``HTTPServerRequest``."""
    return wants_hints(request.method, request.path, request.headers, request.cookies)


class ClientHints(OutputTransform):
    """Tornado output transform (``pn.serve(..., transforms=[ClientHints])``): every HTML
    response asks for the viewport hints (``Accept-CH``); one that answered a request
    :func:`request_wants_hints` also says they are critical (``Critical-CH``: the browser
    repeats the request with them at once, before rendering the answer).

    :class:`AskForHints` only asks: for ``--reuse-sessions``, where a page is rendered from a
    cached session and the visitor's own is built when its websocket connects, which carries
    the page's cookie (:data:`COOKIE_SCRIPT` ran first): no request needs repeating."""

    critical = True

    def __init__(self, request):
        self._request = request

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        if status_code == 200 and str(headers.get("Content-Type", "")).startswith("text/html"):
            headers["Accept-CH"] = ACCEPT_CH
            if self.critical and request_wants_hints(self._request):
                headers["Critical-CH"] = ACCEPT_CH
                headers["Vary"] = ", ".join(filter(None, [headers.get("Vary"), ACCEPT_CH]))
        return status_code, headers, chunk

    def transform_chunk(self, chunk, finishing):
        return chunk


class AskForHints(ClientHints):
    """:class:`ClientHints` without ``Critical-CH`` (``--reuse-sessions``)."""

    critical = False


#: what a browser that does not repeat the request shows (the placeholder's <head>): the
#: cookie, then a reload, which the cookie turns into a dashboard request
PLACEHOLDER_SCRIPT = ("<script>" + _STORE_JS + "if(document.cookie.indexOf('" + COOKIE +
                      "=')>=0)location.reload();</script>")
PLACEHOLDER_TEMPLATE = "{% block postamble %}" + PLACEHOLDER_SCRIPT + "{% endblock %}"


def placeholder():
    """The document answering a first, hint-less Chromium page request: a line of text, no
    dashboard (never rendered by a browser that honours ``Critical-CH``: it repeats the
    request at once)."""
    import panel as pn
    doc = pn.state.curdoc
    if doc is not None:
        doc.template = PLACEHOLDER_TEMPLATE
    return pn.pane.HTML("<p style='font:18px system-ui,sans-serif;padding:24px'>Loading GLE "
                        "Lab… (if this stays, please reload the page)</p>")
