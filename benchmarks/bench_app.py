"""Dashboard performance (not a test).

Run:  python benchmarks/bench_app.py [--seconds 10] [--no-browser]

1. In-process: wall and CPU time of one frame (``Dashboard.tick``: simulate speed/30 a.u., stream
   to the Bokeh models, periodic fits) with the layout attached to a Bokeh Document, for every
   preset, learning on where the preset learns. Patch serialisation is included by collecting
   the document's change events into PATCH-DOC messages as the server would.
2. Real browser: ``gle-lab`` (what ``make serve`` starts; ``--server panel``: ``panel serve
   app/main.py``) plus headless Debian Chromium. Reports frames
   received per second (stream messages applied by BokehJS), server CPU per frame (from
   /proc of the server process), CPU while paused, and slider-to-paint latency (a τr change in
   the browser → the server recomputes the Fourier curves → the new data is painted: two
   animation frames after the change arrives).
3. Per page layout (presentation 1280×720, default 1600×1000, phone 390×844): time from
   navigation to the first streamed trace painted, frames/s, server CPU per frame, slider →
   painted and slider → phase-card flip painted (τr across τm: the card's class changes in
   the page, then two animation frames). Targets: flip ≤ 150 ms median, first trace ≤ 2.5 s.
   Frames and server CPU are counted once the full garbage collection that follows a closed
   session (the page load's placeholder, the previous layout's page) has run
   (:func:`wait_for_collections`).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


#: frames of the paced in-process measurement (one frame period apart)
PACED_FRAMES = 90


def in_process(frames=300):
    from bokeh.document import Document
    from bokeh.protocol import Protocol

    from gle_lab.main import FRAME_MS, Dashboard
    from gle_lab.presets import PRESETS

    proto = Protocol()
    print(f"In-process frame cost ({frames} frames of {FRAME_MS} ms simulated wall time each)")
    print(f"{'preset':18s} {'steps/frame':>11s} {'median ms':>10s} {'p95 ms':>8s} "
          f"{'CPU ms':>7s} {'paced CPU':>9s} {'patch kB':>9s}   (CPU: mean per frame, "
          f"periodic fits included; paced: frames {FRAME_MS} ms apart, as served)")
    for name in list(PRESETS) + ["small_network AM"]:
        d = Dashboard(preset=name.split()[0])
        if name.endswith(" AM"):
            d.state.error_mode = "am"           # windowed exact-adjoint learning
            d.state.sim.learn_from = 0.0
        doc = Document()
        doc.add_root(d.layout.get_root(doc))
        # as when a browser has pulled the document: its models are no longer "new" (else
        # every patch would check each of them for references: ~3 ms per frame that a
        # served session does not pay)
        doc.to_json()
        events = []
        doc.callbacks.on_change(lambda ev: events.append(ev))
        wall, sizes = [], []
        steps = max(1, round(d.state.speed * FRAME_MS / 1000 / d.state.net.dt))
        for _ in range(30):                     # warm-up (first fits, caches)
            d.tick(n_steps=steps)
        events.clear()

        def frame():
            """One frame and its patch message; the message's size in bytes (0: none)."""
            d.tick(n_steps=steps)
            if not events:
                return 0
            msg = proto.create("PATCH-DOC", list(events))
            events.clear()
            return len(msg.content_json) + sum(len(b[1]) if isinstance(b, tuple)
                                               else len(getattr(b, "data", b""))
                                               for b in msg.buffers)
        c0 = time.process_time()
        for _ in range(frames):
            t0 = time.perf_counter()
            size = frame()
            if size:
                sizes.append(size)
            wall.append(time.perf_counter() - t0)
        cpu = (time.process_time() - c0) / frames
        # the same frames a frame period apart, as a server runs them: on this VM the CPU
        # caches are cold again by the next frame (~1 ms more per frame than back to back)
        paced = []
        for _ in range(PACED_FRAMES):
            c1 = time.process_time()
            frame()
            paced.append(time.process_time() - c1)
            time.sleep(FRAME_MS / 1000)
        wall.sort()
        print(f"{name:18s} {steps:11d} {statistics.median(wall) * 1e3:10.2f} "
              f"{wall[int(0.95 * len(wall))] * 1e3:8.2f} {cpu * 1e3:7.2f} "
              f"{statistics.mean(paced) * 1e3:9.2f} "
              f"{statistics.mean(sizes) / 1e3 if sizes else 0:9.1f}")


def _python_loop():
    total = 0
    for i in range(200):
        total += i * i
    return total


def cold_factor(runs=150):
    """How much slower the same plain Python code runs one frame period after its last run
    than back to back, on this machine (no project code: a 200-iteration loop).

    On this VM the paced frame's extra cost is not the frame's own: every interpreted
    operation is slower after 33 ms of anything else (sleeping or busy elsewhere), as this
    loop shows. Returns ``(back-to-back µs, paced µs)``, medians."""
    from gle_lab.main import FRAME_MS

    def median_us(gap):
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            _python_loop()
            samples.append(time.perf_counter_ns() - t0)
            if gap:
                time.sleep(gap)
        return statistics.median(samples) / 1e3
    return median_us(0.0), median_us(FRAME_MS / 1000)


def wait_for_collections(since):
    """Sleep until the served process has collected the sessions closed at ``since``.

    A page's load closes a session (the first visit's placeholder, client hints) and so does
    the previous layout's page; ``gle-lab`` runs one full garbage collection
    :data:`gle_lab.collector.AFTER_CLOSE_S` after such a close (~0.1 s of CPU here). In a
    6 s window it would add ~0.5 ms to every frame measured, a cost of the close, not of
    the frames."""
    from gle_lab.collector import AFTER_CLOSE_S, CHECK_MS
    time.sleep(max(0.0, since + AFTER_CLOSE_S + CHECK_MS / 1000 + 0.5 - time.time()))


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


COUNT_FRAMES = """() => {
  // the newest trace source only: after a preset switch the old one may linger in the
  // document (counting both double-counted frames)
  window.__frames = 0;
  let src = null;
  for (const m of Bokeh.documents[0].all_models)
    if (m.data && m.data.eps0 !== undefined &&
        (src === null || Number(m.id.slice(1)) > Number(src.id.slice(1)))) src = m;
  const key = (window.__count_key = (window.__count_key || 0) + 1);
  src.streaming.connect(() => { if (window.__count_key === key) window.__frames++; });
}"""
#: paints of the Activity plot (BokehJS repaints a plot at most once per animation frame,
#: however many messages arrived since): frames the viewer actually sees, against frames
#: received. Wraps BokehJS 3's PlotView.paint (instrumentation, this benchmark only).
COUNT_PAINTS = """() => {
  const P = Bokeh.require("models/plots/plot_canvas").PlotView.prototype;
  window.__paints = 0;
  if (!P.__gle_counted) {
    const paint = P.paint;
    P.paint = function () {
      const title = this.model.title && this.model.title.text;
      if (title && title.startsWith("Activity")) window.__paints++;
      return paint.apply(this, arguments);
    };
    P.__gle_counted = true;
  }
}"""
#: slider → new Fourier curves painted. The page draws a τ slider's curves itself at once
#: (assets/js/page.js, 6): [server's curves in the page, the first new curves painted (the
#: page's answer), the server's curves painted], ms after the change. "Painted": two
#: animation frames after the data changed.
LATENCY = """async (value) => {
  const doc = Bokeh.documents[0];
  let slider = null, curves = null;
  for (const m of doc.all_models) {
    if (m.title === 'τr prospective (a.u.)' && m.start !== undefined) slider = m;
    if (m.data && m.data.forward_gain !== undefined) curves = m;
  }
  const want = Number((10 ** value).toPrecision(3));
  const raf2 = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(
    () => r(performance.now()))));
  const t0 = performance.now();
  const first = new Promise(resolve => {
    const conn = () => { curves.change.disconnect(conn); raf2().then(resolve); };
    curves.change.connect(conn);
  });
  const server = new Promise(resolve => {
    const conn = () => {
      // (a server without the page's answer tags no curves: every change is the server's)
      if (curves.tags.length === 2 && Math.abs(curves.tags[1] - want) > 1e-6 * want) return;
      curves.change.disconnect(conn);
      const arrived = performance.now();
      raf2().then(done => resolve([arrived, done]));
    };
    curves.change.connect(conn);
  });
  slider.value = value;
  const done = await first;
  const [arrived, served] = await server;
  return [arrived - t0, done - t0, served - t0];
}"""


STREAMING = """() => window.Bokeh && Bokeh.documents.length > 0 &&
  [...Bokeh.documents[0].all_models].some(m => m.data && m.data.eps0 !== undefined &&
                                                 m.data.t.length > 0)"""
#: a phone says so in its user agent (the server composes the phone layout at once)
PHONE_UA = ("Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0 Mobile Safari/537.36")
#: the page layouts measured: (name, viewport width, height, phone?)
LAYOUTS = (("presentation", 1280, 720, False), ("default", 1600, 1000, False),
           ("phone", 390, 844, True))
#: set before the page loads: the time (ms after navigation start) at which the first
#: streamed trace rows are painted (data in the trace source, then two animation frames)
FIRST_PAINT_INIT = """
window.__gle_first_paint = null;
(function poll() {
  try {
    if (window.Bokeh && Bokeh.documents.length)
      for (const m of Bokeh.documents[0].all_models)
        if (m.data && m.data.eps0 !== undefined && m.data.t.length > 0) {
          requestAnimationFrame(() => requestAnimationFrame(() => {
            window.__gle_first_paint = performance.now(); }));
          return;
        }
  } catch (e) {}
  requestAnimationFrame(poll);
})();
"""
#: the first element matching a selector, looked for through the page's shadow roots
FIND_JS = """((root, sel) => { const find = (r) => { const hit = r.querySelector(sel);
    if (hit) return hit;
    for (const el of r.querySelectorAll('*')) if (el.shadowRoot) {
      const f = find(el.shadowRoot); if (f) return f; }
    return null; }; return find(root); })"""
#: slider → the phase card's colour and word flip painted (τr across τm = 1): [the page's
#: flip painted (its own answer, assets/js/page.js 6), the server's card painted], ms
FLIP = """async (value) => {
  const doc = Bokeh.documents[0];
  let slider = null;
  for (const m of doc.all_models)
    if (m.title === 'τr prospective (a.u.)' && m.start !== undefined) slider = m;
  const host = FIND(document, '.gle-view-phase');
  const card = () => { const el = host.shadowRoot.querySelector('#gle-forward');
    return el ? el.className : ''; };
  const served = () => { const box = host.shadowRoot.querySelector('.gle-phase[data-answer]');
    return box ? JSON.parse(box.dataset.answer).tr : null; };
  const want = Number((10 ** value).toPrecision(3));
  const raf2 = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(
    () => r(performance.now()))));
  const before = card();
  const t0 = performance.now();
  let flipped = null, answered = null;
  const painted = new Promise(resolve => {
    const obs = new MutationObserver(() => {
      if (flipped == null && card() !== before) flipped = raf2();
      const tr = served();          // null: a server without the page's answer
      if (answered == null && (tr == null ? flipped != null : Math.abs(tr - want) <= 1e-6 * want))
        answered = tr == null ? flipped : raf2();
      if (flipped != null && answered != null) {
        obs.disconnect();
        Promise.all([flipped, answered]).then(resolve);
      }
    });
    obs.observe(host.shadowRoot, {subtree: true, childList: true, attributes: true,
                                  characterData: true});
  });
  slider.value = value;
  // no flip within 10 s (a value on the same side of τm): not a measurement
  const timeout = new Promise(resolve => setTimeout(() => resolve([NaN, NaN]), 10000));
  const [a, b] = await Promise.race([painted, timeout]);
  return [a - t0, b - t0];
}"""

#: Play/Pause clicked → the server's answer (the button's new label) painted
BUTTON = """async () => {
  const toggle = [...Bokeh.documents[0].all_models].find(m => m.type === 'Toggle' &&
    m.css_classes.includes('gle-play'));
  const want = toggle.label === 'Pause' ? 'Play' : 'Pause';
  const button = FIND(document, '.gle-play').shadowRoot.querySelector('button');
  const t0 = performance.now();
  const painted = new Promise(resolve => {
    const conn = () => { if (toggle.label !== want) return;
      toggle.properties.label.change.disconnect(conn);
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now()))); };
    toggle.properties.label.change.connect(conn);
  });
  button.click();
  const timeout = new Promise(resolve => setTimeout(() => resolve(NaN), 10000));
  return (await Promise.race([painted, timeout])) - t0;
}"""

FLIP, BUTTON = (js.replace("FIND(", FIND_JS + "(") for js in (FLIP, BUTTON))


#: trace categories for :func:`main_thread_breakdown` (what DevTools' Performance panel records)
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "blink",
                    "cc", "viz", "toplevel", "blink.user_timing"]
#: (label, thread, trace event): each a share of the wall time. Nested events are not added
#: up: every row is its own figure.
BREAKDOWN = (
    ("main thread busy", "CrRendererMain", "ThreadControllerImpl::RunTask"),
    ("  plots painted (BokehJS in animation frames)", "CrRendererMain", "FireAnimationFrame"),
    ("  canvases handed to the compositor (their drawing rasterised)", "CrRendererMain",
     "LayerTreeHost::DoUpdateLayers"),
    ("  messages in (websocket data: patches applied)", "CrRendererMain",
     "Receive mojo message"),
    ("  style recalculation", "CrRendererMain", "UpdateLayoutTree"),
    ("  layout", "CrRendererMain", "Layout"),
    ("  page paint (DOM)", "CrRendererMain", "Paint"),
    ("compositor thread", "Compositor", "ThreadControllerImpl::RunTask"),
    ("display compositor (software)", "VizCompositorThread", "ThreadControllerImpl::RunTask"),
    ("raster workers", "ThreadPoolForegroundWorker", "ThreadPool_RunTask"),
)


def main_thread_breakdown(b, page, seconds):
    """Where the page's time goes while it streams: a Chromium performance trace of
    ``seconds``. Returns ``{label: percent of wall time}`` (see :data:`BREAKDOWN`) plus
    ``"frames/s"`` (main-thread frames begun per second).

    Found with it (2026-12-01, 1280×720, this 2-core machine without GPU): the main thread
    busy ~90 %; of the wall time ~30 % handing the plots' canvases to the compositor, which
    is where Chromium rasterises what BokehJS drew -- the thick (> 1 px) lines of the live
    plots: set to 1 px, that share halved (see docs/deployment.md) -- ~28 % BokehJS painting,
    ~18 % applying the websocket's messages."""
    b.start_tracing(page=page, categories=TRACE_CATEGORIES)
    time.sleep(seconds)
    raw = b.stop_tracing()
    events = json.loads(raw)
    events = events["traceEvents"] if isinstance(events, dict) else events
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    spans = [e for e in events if e.get("ph") == "X"]
    if not spans:
        return {}
    t0 = min(e["ts"] for e in spans)
    t1 = max(e["ts"] + e.get("dur", 0) for e in spans)
    wall = max(t1 - t0, 1)
    total, count = collections.Counter(), collections.Counter()
    for e in spans:
        key = (threads.get((e["pid"], e["tid"]), "?"), e["name"])
        total[key] += e.get("dur", 0)
        count[key] += 1
    out = {label: 100.0 * total[(thread, name)] / wall for label, thread, name in BREAKDOWN}
    out["frames/s"] = count[("CrRendererMain", "ProxyMain::BeginMainFrame")] / (wall / 1e6)
    return out


#: diagnostic (``--line-width``): every line of every plot drawn this wide (px), in the page
LINE_WIDTH_JS = """(w) => { let n = 0; for (const m of Bokeh.documents[0].all_models)
  if (m.type === 'Line') { m.line_width = w; n++; } return n; }"""


def layouts(b, srv, seconds, results, trace=0.0, line_width=None):
    """Per page layout: navigation → first trace painted, frames/s, slider → painted and
    slider → card flip painted (phase_inversion preset)."""
    pid = srv.proc.pid
    closed = 0.0                              # when the previous layout's page was closed
    for name, width, height, phone in LAYOUTS:
        ctx = b.new_context(viewport={"width": width, "height": height}, is_mobile=phone,
                            has_touch=phone, **({"user_agent": PHONE_UA} if phone else {}))
        ctx.add_init_script(FIRST_PAINT_INIT)
        page = ctx.new_page()
        page.set_default_timeout(60000)
        page.goto(srv.url)
        page.wait_for_function("() => window.__gle_first_paint !== null")
        first = page.evaluate("() => window.__gle_first_paint")
        loaded = time.time()
        page.locator(".gle-complete").wait_for(state="attached")   # see browser()
        if line_width is not None:
            page.evaluate(LINE_WIDTH_JS, line_width)
        time.sleep(2.0)
        wait_for_collections(max(loaded, closed))
        page.evaluate(COUNT_FRAMES)
        page.evaluate(COUNT_PAINTS)
        c0, t0 = _cpu_seconds(pid), time.perf_counter()
        time.sleep(seconds)
        frames, paints = page.evaluate("() => [window.__frames, window.__paints]")
        c1, t1 = _cpu_seconds(pid), time.perf_counter()
        fps = frames / (t1 - t0)
        painted = paints / (t1 - t0)
        if trace > 0:
            shares = main_thread_breakdown(b, page, trace)
            print(f"  {name}: page while streaming ({trace:.0f} s trace; % of wall time; "
                  f"{shares.get('frames/s', 0):.1f} frames begun/s)")
            for label, _, _ in BREAKDOWN:
                print(f"      {label:64s} {shares.get(label, 0):5.1f} %")
        paint, served = [], []
        for i in range(12):
            _, d, sd = page.evaluate(LATENCY, -0.5 if i % 2 == 0 else 0.2)
            paint.append(d)
            served.append(sd)
            time.sleep(0.25)
        page.evaluate(LATENCY, -1.0)          # τr = 0.1 < τm = 1: the rate card lags
        time.sleep(1.0)
        flips, served_flips = [], []
        for i in range(10):
            # τr = 2 (> τm = 1: the rate card flips to LEADS), then back to 0.1 (LAGS)
            flip, served_flip = page.evaluate(FLIP, 0.3 if i % 2 == 0 else -1.0)
            if flip == flip:                    # NaN: no flip seen
                flips.append(flip)
                served_flips.append(served_flip)
            time.sleep(0.4)
        flips = flips or [float("nan")]
        served_flips = served_flips or [float("nan")]
        buttons = []
        for i in range(6):                      # pause, play, ... (ends playing)
            buttons.append(page.evaluate(BUTTON))
            time.sleep(0.5)
        buttons.sort()
        paint.sort()
        flips.sort()
        row = {"first_ms": first, "fps": fps, "painted_fps": painted,
               "cpu_ms": (c1 - c0) / max(frames, 1) * 1e3,
               "paint_ms": statistics.median(paint), "paint_p90": paint[int(0.9 * len(paint))],
               "flip_ms": statistics.median(flips), "flip_p90": flips[int(0.9 * len(flips))],
               "served_paint_ms": statistics.median(served),
               "served_flip_ms": statistics.median(served_flips),
               "button_ms": statistics.median(buttons), "load": os.getloadavg()[0]}
        for k, v in row.items():
            results.setdefault(f"{name}:{k}", []).append(v)
        print(f"  {name:12s} {width}×{height}: first trace painted {first:6.0f} ms after "
              f"navigation; {fps:5.1f} frames/s received, Activity painted "
              f"{painted:4.1f}/s; server {row['cpu_ms']:.2f} ms CPU/frame; "
              f"slider → painted {row['paint_ms']:.0f} ms (p90 {row['paint_p90']:.0f}); "
              f"slider → card flip painted {row['flip_ms']:.0f} ms (p90 "
              f"{row['flip_p90']:.0f}); the server's curves and card painted "
              f"{row['served_paint_ms']:.0f} and {row['served_flip_ms']:.0f} ms; "
              f"Play/Pause → label painted {row['button_ms']:.0f} ms; "
              f"load {row['load']:.2f}")
        # paused before closing: the session lingers until the server reaps it (~15 s) and
        # must not take CPU from the next layout's measurement
        page.locator(".gle-play button").click()
        page.wait_for_function("() => [...Bokeh.documents[0].all_models].some(m => "
                               "m.css_classes && m.css_classes.includes('gle-play') && "
                               "m.active === false)")
        ctx.close()
        closed = time.time()


def serve(kind):
    """The server measured: ``gle-lab`` (as ``make serve`` starts it: client hints, no
    Bokeh developer checks, the session cap) or ``panel`` (``panel serve app/main.py``)."""
    from gle_lab.loadclient import GleLabServer
    return GleLabServer(plain=(kind == "panel"))


def browser(seconds=10.0, preset_learning=True, results=None, trace=0.0, line_width=None,
            server="gle-lab"):
    from playwright.sync_api import sync_playwright

    srv = serve(server)
    pid = srv.proc.pid
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = b.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(srv.url)
            page.wait_for_function(STREAMING, timeout=60000)
            loaded = time.time()
            # counted once the later views are in: while the page applies them it falls
            # behind and then works off queued frames, which counted up to 35 frames/s
            # from a server sending 29.5
            page.locator(".gle-complete").wait_for(state="attached", timeout=60000)
            time.sleep(2.0)
            wait_for_collections(loaded)
            page.evaluate(COUNT_FRAMES)
            c0, t0 = _cpu_seconds(pid), time.perf_counter()
            time.sleep(seconds)
            frames = page.evaluate("() => window.__frames")
            c1, t1 = _cpu_seconds(pid), time.perf_counter()
            fps = frames / (t1 - t0)
            res = results if results is not None else {}
            res.setdefault("load", []).append(os.getloadavg()[0])
            res.setdefault("fps", []).append(fps)
            res.setdefault("cpu_ms", []).append((c1 - c0) / max(frames, 1) * 1e3)
            print(f"\nReal browser (phase_inversion preset, {seconds:.0f} s, "
                  f"load {os.getloadavg()[0]:.2f})")
            print(f"  frames received by the browser: {fps:.1f} /s")
            print(f"  server CPU: {(c1 - c0) / (t1 - t0) * 100:.1f} % of a core, "
                  f"{(c1 - c0) / max(frames, 1) * 1e3:.2f} ms per frame (incl. websocket I/O)")
            arr, lat, served = [], [], []
            for i in range(16):
                value = -0.5 if i % 2 == 0 else 0.2   # τr 0.32 ↔ 1.6 (log10 slider)
                a, d, sd = page.evaluate(LATENCY, value)
                arr.append(a)
                lat.append(d)
                served.append(sd)
                time.sleep(0.25)
            lat.sort()
            res.setdefault("arrive_ms", []).append(statistics.median(arr))
            res.setdefault("paint_ms", []).append(statistics.median(lat))
            res.setdefault("served_paint_ms", []).append(statistics.median(served))
            print(f"  slider → the server's curves in the browser: median "
                  f"{statistics.median(arr):.0f} ms, painted {statistics.median(served):.0f} ms")
            print(f"  slider → painted (the page's own answer): median "
                  f"{statistics.median(lat):.0f} ms, p90 {lat[int(0.9 * len(lat))]:.0f} ms "
                  f"(n = {len(lat)})")
            # with learning on: chain preset
            page.evaluate("""() => { for (const m of Bokeh.documents[0].all_models)
                if (m.type === 'Select' && m.options && m.value === 'phase_inversion')
                { m.value = 'chain'; } }""")
            time.sleep(3.0)
            page.evaluate(COUNT_FRAMES)
            c0, t0 = _cpu_seconds(pid), time.perf_counter()
            time.sleep(seconds)
            frames = page.evaluate("() => window.__frames")
            c1, t1 = _cpu_seconds(pid), time.perf_counter()
            print(f"  chain preset, learning on (W, τm; batch 16): {frames / (t1 - t0):.1f} "
                  f"frames/s, server {(c1 - c0) / max(frames, 1) * 1e3:.2f} ms CPU per frame")
            res.setdefault("learn_fps", []).append(frames / (t1 - t0))
            res.setdefault("learn_cpu_ms", []).append((c1 - c0) / max(frames, 1) * 1e3)
            # paused
            page.locator(".gle-play button").click()
            time.sleep(1.0)
            c0, t0 = _cpu_seconds(pid), time.perf_counter()
            time.sleep(5.0)
            c1, t1 = _cpu_seconds(pid), time.perf_counter()
            print(f"  paused: server CPU {(c1 - c0) / (t1 - t0) * 100:.2f} % of a core")
            res.setdefault("paused_pct", []).append((c1 - c0) / (t1 - t0) * 100)
            print("\n  Layouts (phase_inversion preset; slider → card flip: τr 0.1 ↔ 2 across "
                  "τm = 1):")
            layouts(b, srv, seconds, res, trace=trace, line_width=line_width)
            b.close()
    finally:
        srv.stop()


def screenshots(directory, server="gle-lab"):
    """assets/screenshot-{projector,wide,phone}.png: the three layouts, streaming."""
    from playwright.sync_api import sync_playwright

    srv = serve(server)
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            for name, (w, h, phone) in {"projector": (1280, 720, False),
                                        "wide": (1920, 1080, False),
                                        "phone": (390, 844, True)}.items():
                ctx = b.new_context(viewport={"width": w, "height": h}, is_mobile=phone,
                                    has_touch=phone,
                                    **({"user_agent": PHONE_UA} if phone else {}))
                page = ctx.new_page()
                page.goto(srv.url)
                page.wait_for_function(STREAMING, timeout=60000)
                # a few periods of the input on screen, and a measured phase on the cards
                page.wait_for_function("() => [...Bokeh.documents[0].all_models].some(m => "
                                       "m.data && m.data.eps0 !== undefined && "
                                       "m.data.t.length > 0 && m.data.t[m.data.t.length-1] > 16)",
                                       timeout=120000)
                # the page as it stays (every view; a session joining a shared run has a
                # full window at its first frame) with the measured phase on the cards
                page.locator(".gle-complete").wait_for(state="attached", timeout=60000)
                page.locator(".gle-view-phase", has_text="measured").first.wait_for(
                    timeout=60000)
                path = os.path.join(directory, f"screenshot-{name}.png")
                page.screenshot(path=path)
                print("wrote", path)
                ctx.close()
            b.close()
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--runs", type=int, default=1, help="browser runs; medians are reported")
    ap.add_argument("--no-in-process", action="store_true")
    ap.add_argument("--screenshots", metavar="DIR", default=None,
                    help="only write the three layouts' screenshots into DIR (e.g. assets)")
    ap.add_argument("--trace", type=float, default=0.0, metavar="S",
                    help="per layout, also record S seconds of a Chromium performance trace "
                         "and print where the page's time goes")
    ap.add_argument("--line-width", type=float, default=None, metavar="PX",
                    help="diagnostic: in the layouts, draw every plot line PX wide (changes "
                         "the picture; the dashboard's own widths are 1.5-3 px)")
    ap.add_argument("--server", choices=("gle-lab", "panel"), default="gle-lab",
                    help="gle-lab (default, as `make serve`) or panel (`panel serve app/main.py`)")
    args = ap.parse_args()
    if args.screenshots:
        screenshots(args.screenshots, server=args.server)
        return
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if not args.no_in_process:
        in_process(args.frames)
        hot, cold = cold_factor()
        print(f"This machine: a plain Python loop (no project code) takes {hot:.1f} µs back to "
              f"back and {cold:.1f} µs one frame period after its last run ({cold / hot:.1f}×): "
              f"why 'paced CPU' exceeds 'CPU ms' here")
    if not args.no_browser:
        results = {}
        for _ in range(args.runs):
            browser(args.seconds, results=results, trace=args.trace,
                    line_width=args.line_width, server=args.server)
        if args.runs > 1:
            print(f"\nMedians of {args.runs} runs (load average per run: "
                  + ", ".join(f"{x:.1f}" for x in results["load"]) + ")")
            for key, label in (("fps", "frames/s received (phase_inversion)"),
                               ("cpu_ms", "server CPU ms per frame"),
                               ("arrive_ms", "slider → server's data ms"),
                               ("paint_ms", "slider → painted ms"),
                               ("served_paint_ms", "slider → server's data painted ms"),
                               ("learn_fps", "frames/s, chain (learning on)"),
                               ("learn_cpu_ms", "server CPU ms per frame, chain"),
                               ("paused_pct", "paused CPU % of a core")):
                print(f"  {label:38s} {statistics.median(results[key]):8.2f}")
            for name, *_ in LAYOUTS:
                print(f"  {name}: " + ", ".join(
                    f"{k} {statistics.median(results[f'{name}:{k}']):.1f}"
                    for k in ("first_ms", "fps", "painted_fps", "cpu_ms", "paint_ms", "paint_p90", "flip_ms",
                              "flip_p90", "served_paint_ms", "served_flip_ms", "button_ms",
                              "load")))


if __name__ == "__main__":
    main()
