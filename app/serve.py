"""``gle-lab``: serve the dashboard (a thin wrapper around Panel's server).

    gle-lab                      # http://localhost:5006/gle-lab (loopback only)
    gle-lab --port 8080 --show   # another port, open a browser tab
    gle-lab --address 0.0.0.0 --allow-websocket-origin lab.example.org --max-sessions 20

Deployment options (docs/deployment.md says what each one costs): ``--num-procs``,
``--max-sessions`` (a polite "GLE Lab is full" page beyond it), ``--idle-timeout``,
``--unused-session-lifetime`` / ``--check-unused-sessions``, ``--no-shared-runs``,
``--basic-auth`` and Panel's OAuth providers (``--oauth-provider`` ...; secrets preferably
from the ``PANEL_OAUTH_*`` / ``PANEL_COOKIE_SECRET`` environment variables),
``--use-xheaders`` behind a reverse proxy.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys

LOOPBACK = ("localhost", "127.0.0.1", "::1")
#: defaults safe for a laptop and sized for a 2-core server (docs/deployment.md, load curve)
DEFAULT_MAX_SESSIONS = 20
DEFAULT_IDLE_MINUTES = 30.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="gle-lab", description="Serve the GLE Lab dashboard.")
    p.add_argument("--port", type=int, default=5006, help="TCP port (default 5006; 0 = any free)")
    p.add_argument("--address", default="localhost",
                   help="address to listen on (default localhost: this machine only)")
    p.add_argument("--allow-websocket-origin", action="append", default=None, metavar="HOST[:PORT]",
                   help="extra origin allowed to connect (repeatable; needed when serving on a "
                        "non-loopback address or behind a reverse proxy: the public host name)")
    p.add_argument("--show", action="store_true", help="open the dashboard in a browser")
    p.add_argument("--preset", default="phase_inversion", help="preset loaded by new sessions")
    d = p.add_argument_group("deployment (see docs/deployment.md)")
    d.add_argument("--num-procs", type=int, default=1, metavar="N",
                   help="server processes sharing the port (default 1; 0 = one per core). "
                        "Each has its own sessions and session cap")
    d.add_argument("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS, metavar="N",
                   help=f"live sessions per process (default {DEFAULT_MAX_SESSIONS}; 0 = "
                        "unlimited); beyond it visitors get a 'GLE Lab is full' page")
    d.add_argument("--max-heavy-sessions", type=int, default=None, metavar="N",
                   help="live MNIST-1D sessions (?preset=mnist1d) per process (default: "
                        "gle_lab.capacity.DEFAULT_MAX_HEAVY; 0 = unlimited); beyond it "
                        "visitors are told the MNIST-1D lab is busy, other presets stay open")
    d.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_MINUTES, metavar="MIN",
                   help=f"pause a session after MIN minutes without interaction and close it "
                        f"after 2×MIN (default {DEFAULT_IDLE_MINUTES:g}; 0 = never)")
    d.add_argument("--unused-session-lifetime", type=int, default=15000, metavar="MS",
                   help="how long a session without a connected browser is kept (default "
                        "15000 ms)")
    d.add_argument("--check-unused-sessions", type=int, default=17000, metavar="MS",
                   help="how often unused sessions are looked for (default 17000 ms)")
    d.add_argument("--reuse-sessions", action="store_true",
                   help="for a class opening the link at once: a page is rendered from a "
                        "cached session of its preset and each visitor's session is built "
                        "once, when its websocket connects (otherwise, with --num-procs > 1, "
                        "a page and its websocket reaching different processes build it "
                        "twice). A link's hidden/locked controls appear a moment after the page")
    d.add_argument("--no-shared-runs", action="store_true",
                   help="give every session its own simulation from the start (by default "
                        "identical sessions of a process, opened within 30 s with the same "
                        "link, share one run until each first changes something)")
    d.add_argument("--use-xheaders", action="store_true",
                   help="trust X-Real-Ip / X-Forwarded-For / X-Scheme from a reverse proxy")
    d.add_argument("--basic-auth", default=None, metavar="PASSWORD|FILE",
                   help="require a login: one password, or a JSON file {user: password} "
                        "(or PANEL_BASIC_AUTH)")
    d.add_argument("--cookie-secret", default=None,
                   help="secret signing the login cookies (or PANEL_COOKIE_SECRET); required "
                        "for OAuth and for basic auth across several hosts")
    d.add_argument("--oauth-provider", default=None,
                   help="Panel OAuth provider (github, google, azure, gitlab, okta, auth0, "
                        "generic ...; or PANEL_OAUTH_PROVIDER)")
    d.add_argument("--oauth-key", default=None, help="OAuth client id (or PANEL_OAUTH_KEY)")
    d.add_argument("--oauth-secret", default=None,
                   help="OAuth client secret (prefer PANEL_OAUTH_SECRET: argv is visible to "
                        "every user of the machine)")
    d.add_argument("--oauth-redirect-uri", default=None,
                   help="public URL of the login endpoint, e.g. https://lab.example.org/login")
    d.add_argument("--oauth-extra-params", default=None, metavar="JSON",
                   help='extra provider parameters as JSON, e.g. \'{"tenant": "..."}\'')
    d.add_argument("--oauth-encryption-key", default=None,
                   help="key encrypting OAuth tokens in cookies (or PANEL_OAUTH_ENCRYPTION)")
    args = p.parse_args(argv)
    if args.num_procs < 0:
        p.error("--num-procs must be >= 0")
    if args.max_sessions < 0:
        p.error("--max-sessions must be >= 0")
    if args.max_heavy_sessions is not None and args.max_heavy_sessions < 0:
        p.error("--max-heavy-sessions must be >= 0")
    if not args.idle_timeout >= 0:
        p.error("--idle-timeout must be >= 0 minutes")
    if args.unused_session_lifetime <= 0 or args.check_unused_sessions <= 0:
        p.error("--unused-session-lifetime and --check-unused-sessions must be > 0 ms")
    if args.port == 0:
        args.port = free_port(args.address)
    if args.oauth_extra_params:
        try:
            args.oauth_extra_params = json.loads(args.oauth_extra_params)
        except ValueError as exc:
            p.error(f"--oauth-extra-params is not JSON: {exc}")
    return args


def websocket_origins(address, port, extra=None):
    """Origins allowed to open the websocket: the extra ones, plus loopback when served there."""
    origins = list(extra or [])
    if address in LOOPBACK:
        origins += [f"localhost:{port}", f"127.0.0.1:{port}"]
    return origins or None


def free_port(address):
    """A currently free TCP port on ``address`` (for ``--port 0``: the allowed websocket
    origins need the real port before the server binds it)."""
    import socket
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((address if address != "localhost" else "127.0.0.1", 0))
        return s.getsockname()[1]


def server_kwargs(args):
    """Keyword arguments for ``pn.serve`` from the parsed options."""
    from gle_lab.client_hints import AskForHints, ClientHints
    kw = dict(port=args.port, address=args.address,
              websocket_origin=websocket_origins(args.address, args.port,
                                                 args.allow_websocket_origin),
              show=False, start=False, title="GLE Lab", verbose=False,
              num_procs=args.num_procs,
              unused_session_lifetime_milliseconds=args.unused_session_lifetime,
              check_unused_sessions_milliseconds=args.check_unused_sessions,
              # the page asks for the window's size (gle_lab.client_hints): the first
              # document already has the layout for it
              transforms=[AskForHints if args.reuse_sessions else ClientHints])
    if args.use_xheaders:
        kw["use_xheaders"] = True
    basic = args.basic_auth or os.environ.get("PANEL_BASIC_AUTH")
    oauth = args.oauth_provider or os.environ.get("PANEL_OAUTH_PROVIDER")
    if basic and oauth:
        sys.exit("gle-lab: choose --basic-auth or --oauth-provider, not both")
    cookie_secret = args.cookie_secret or os.environ.get("PANEL_COOKIE_SECRET")
    if oauth and not cookie_secret:
        sys.exit("gle-lab: OAuth needs --cookie-secret (or PANEL_COOKIE_SECRET)")
    if basic:
        kw["basic_auth"] = basic
        # login cookies must be signed; a random secret is fine for one host (logins do
        # not survive a restart); several hosts need the same --cookie-secret
        kw["cookie_secret"] = cookie_secret or secrets.token_urlsafe(32)
    if oauth:
        kw.update(oauth_provider=oauth, cookie_secret=cookie_secret)
        for name in ("oauth_key", "oauth_secret", "oauth_redirect_uri", "oauth_extra_params",
                     "oauth_encryption_key"):
            value = getattr(args, name)
            if value:
                kw[name] = value
    return kw


def session_key(default, presets):
    """Panel's ``session_key_func`` for ``--reuse-sessions``: one cached page per preset
    (the link's ``?preset=`` if it names one, else ``default``): a bounded cache whatever
    the query."""
    known = set(presets) | {"mnist1d"}

    def key(request):
        args = getattr(request, "arguments", None) or {}
        raw = (args.get("preset") or [b""])[0]
        name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return (request.path, name if name in known else default)
    return key


def hinted(app):
    """``app``, except for a first page request that Chromium will repeat with the window's
    size (:func:`gle_lab.client_hints.request_wants_hints`): that one gets the small
    placeholder, not a session that would be built for nothing."""
    from gle_lab.client_hints import placeholder, request_wants_hints
    import panel as pn

    def page():
        ctx = pn.state.curdoc.session_context if pn.state.curdoc is not None else None
        request = getattr(ctx, "request", None)
        if request is not None and request_wants_hints(request):
            return placeholder()
        return app()
    return page


def _exit_with_parent():
    """In a ``--num-procs`` worker: get SIGTERM when the supervising parent dies (Linux), so
    stopping the parent by its pid stops the workers too instead of orphaning them."""
    import ctypes
    import signal
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)           # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:                       # the parent is already gone
        os.kill(os.getpid(), signal.SIGTERM)


def _warm_mnist():
    try:
        from gle_lab.mnist import warm_up
        print(f"gle-lab: MNIST-1D preloaded in {warm_up():.1f} s", flush=True)
    except Exception as exc:                                   # noqa: BLE001
        print(f"gle-lab: MNIST-1D not preloaded ({type(exc).__name__}: {exc}); its first "
              f"visitor will wait for it", file=sys.stderr)


def tune_gc():
    """Python's cyclic garbage collector as a server needs it (:mod:`gle_lab.collector`):
    the ~0.6 million start-up objects frozen out of every collection (``gc.freeze``; before
    ``--num-procs`` forks, so the workers do not copy the pages they share with the parent),
    full collections held while visitors arrive, and one after sessions close. Returns the
    mode (``GLE_LAB_GC``: ``freeze`` for the freeze alone; ``default`` changes nothing)."""
    from gle_lab import collector
    return collector.install()


#: Bokeh's developer diagnostics, off in a serving process unless their environment
#: variable says otherwise: the validation of every new document (``doc.validate()``: every
#: model's checks, twice per session: ~25 ms for a first screen, ~100 ms for a whole page,
#: and a logged W-1002 EMPTY_LAYOUT warning per visitor for the still-empty later-views
#: column) and of every callback's signature in ``on_change`` (``inspect.signature`` for
#: each of Panel's ~600 property callbacks per session: 50-65 ms). Both check GLE Lab's own
#: code, which the test suite runs with them on (in-process; ``gle-lab`` in the browser
#: tests runs as deployed).
BOKEH_DIAGNOSTICS = {"perform_document_validation": "BOKEH_VALIDATE_DOC",
                     "perform_error_diagnostics": "BOKEH_PERFORM_ERROR_DIAGNOSTICS"}


def quiet_bokeh_diagnostics():
    """Turn off :data:`BOKEH_DIAGNOSTICS` not set in the environment; returns their names."""
    from bokeh.settings import settings
    off = []
    for name, env in BOKEH_DIAGNOSTICS.items():
        if env not in os.environ:
            getattr(settings, name).set_value(False)
            off.append(name)
    return off


def main(argv=None):
    args = parse_args(argv)
    import panel as pn

    from gle_lab.capacity import SessionLimiter, guarded_app, log_to_stdout, report_exception
    from gle_lab.main import create_app
    from gle_lab.presets import PRESETS

    if args.preset not in PRESETS and args.preset != "mnist1d":
        sys.exit(f"gle-lab: unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}")
    log_to_stdout()
    if args.no_shared_runs:
        os.environ["GLE_LAB_NO_SHARED_RUNS"] = "1"     # read by gle_lab.shared_runs.enabled
    if args.reuse_sessions:
        pn.config.reuse_sessions = True
        pn.config.session_key_func = session_key(args.preset, PRESETS)
    limiter = SessionLimiter(args.max_sessions) if args.max_sessions else None
    if args.max_heavy_sessions is not None:
        from gle_lab.capacity import HEAVY
        HEAVY.max_sessions = args.max_heavy_sessions or None
    # an error while handling one browser's input is shown to that session only
    pn.config.exception_handler = report_exception
    app = guarded_app(lambda: create_app(args.preset), limiter=limiter,
                      idle_timeout=args.idle_timeout * 60 or None)
    if not args.reuse_sessions:
        # (with --reuse-sessions a first request builds the page every later one is
        # rendered from: never the placeholder; the others build their sessions at their
        # websockets, which carry the page's cookie)
        app = hinted(app)
    quiet_bokeh_diagnostics()
    tune_gc()                   # before pn.serve: --num-procs forks there
    server = pn.serve({"gle-lab": app}, **server_kwargs(args))
    # with --num-procs > 1 every forked process gets here; only the first one prints
    from tornado.process import task_id
    if task_id() is not None:
        _exit_with_parent()
    if task_id() in (None, 0):
        host = "localhost" if args.address in LOOPBACK + ("",) else args.address
        url = f"http://{host}:{server.port}/gle-lab"
        procs = "" if args.num_procs == 1 else f", {args.num_procs or os.cpu_count()} processes"
        cap = (f"at most {args.max_sessions} sessions per process" if args.max_sessions
               else "no session cap")
        print(f"GLE Lab running at {url}  ({cap}{procs}; Ctrl+C to stop)", flush=True)
        if args.show:
            server.io_loop.add_callback(server.show, "/gle-lab")
    # in every serving process, beside the server: the MNIST-1D preset's data and kernel
    # (its first visitor then waits for the session only; never delays the start)
    import threading
    threading.Thread(target=_warm_mnist, name="gle-lab-mnist-warm-up", daemon=True).start()
    # this process' full garbage collections, between frames (gle_lab.collector)
    from gle_lab import collector
    from gle_lab.capacity import closed_in_memory, live_dashboards
    from gle_lab.main import sessions_settling
    server.io_loop.add_callback(collector.start, arriving=sessions_settling,
                                lingering=closed_in_memory, live=live_dashboards)
    try:
        server.start()
        server.io_loop.start()
    except KeyboardInterrupt:
        print("\nGLE Lab stopped.")


if __name__ == "__main__":
    main()
