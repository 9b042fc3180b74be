"""``gle-lab``: serve the dashboard (a thin wrapper around Panel's server).

    gle-lab                      # http://localhost:5006/ (loopback only)
    gle-lab --port 8080 --show   # another port, open a browser tab
    gle-lab --address 0.0.0.0 --allow-websocket-origin lab.example.org:5006
"""
from __future__ import annotations

import argparse
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="gle-lab", description="Serve the GLE Lab dashboard.")
    p.add_argument("--port", type=int, default=5006, help="TCP port (default 5006; 0 = any free)")
    p.add_argument("--address", default="localhost",
                   help="address to listen on (default localhost: this machine only)")
    p.add_argument("--allow-websocket-origin", action="append", default=None, metavar="HOST[:PORT]",
                   help="extra origin allowed to connect (repeatable; needed when serving on a "
                        "non-loopback address)")
    p.add_argument("--show", action="store_true", help="open the dashboard in a browser")
    p.add_argument("--preset", default="phase_inversion", help="preset loaded by new sessions")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import panel as pn

    from app.main import create_app
    from app.presets import PRESETS

    if args.preset not in PRESETS:
        sys.exit(f"gle-lab: unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}")
    origins = list(args.allow_websocket_origin or [])
    if args.address in ("localhost", "127.0.0.1", "::1"):
        origins += [f"localhost:{args.port}", f"127.0.0.1:{args.port}"]
    server = pn.serve({"gle-lab": lambda: create_app(args.preset)}, port=args.port,
                      address=args.address, websocket_origin=origins or None, show=False,
                      start=False, title="GLE Lab", verbose=False)
    host = "localhost" if args.address in ("localhost", "127.0.0.1", "::1", "") else args.address
    url = f"http://{host}:{server.port}/gle-lab"
    print(f"GLE Lab running at {url}  (Ctrl+C to stop)", flush=True)
    if args.show:
        server.io_loop.add_callback(server.show, "/gle-lab")
    try:
        server.start()
        server.io_loop.start()
    except KeyboardInterrupt:
        print("\nGLE Lab stopped.")


if __name__ == "__main__":
    main()
