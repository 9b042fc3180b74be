"""Shareable state: the URL (Panel location sync), teacher flags and session files.

:class:`URLState` is a small ``param`` object whose parameters are exactly the query keys of a
GLE Lab link::

    ?preset=chain&seed=3&tau_m=0.5,2&tau_r=0.1,0.1&W=0.8,1.5&omega=1&error_mode=ie
     &views=activity,errors,microcircuit&hide=learning,input&lock=tau_m

It is synced with the address bar by ``pn.state.location.sync(url_state, ...)`` (Panel parses
the query and writes every change back). Its parameters are deliberately permissive (anything
Panel parsed from the query is accepted), and :class:`Sharing` validates each value against the
matching :class:`~app.state.LabState` parameter (bounds, selector objects, list length) before
applying it in a safe order: preset and seed first (they rebuild the network), then per-neuron
τm/τr and weights, then the scalar controls. A value that is unknown, unparsable, out of range or
refused by the engine falls back to the preset's default and is named in a visible notice.

Per-neuron values are comma lists in the order of the neuron labels (``n1, n2`` or
``n1.0, n1.1, n2.0 ...``); weights ``W`` are listed layer by layer, row-major (post × pre), in
the order of the "Weight" selector. The lists hold the *settings* (preset values plus the user's
changes), not values learned during the run, so a link restarts the same run from t = 0: with
the same seed it produces the same traces. Numbers are written with :data:`LINK_DIGITS` (lists)
or :data:`SCALAR_DIGITS` (scalars) significant digits; a value equal to the current one at that
precision is left as it is when a link is applied, so a rounded link still reproduces the
preset's random draws exactly. The Share field holds the full absolute link
(:meth:`Sharing.link_url`: the page's own address from ``pn.state.location``).

Teacher mode: ``hide=`` and ``lock=`` take comma lists of control groups (``experiment``,
``neuron``, ``input``, ``learning``, ``display``, ``playback``) and cards (``share``,
``export``, ``teacher``) or single controls (``preset``, ``seed``, ``tau_m``, ``tau_r``,
``weight``, ``omega`` ...). They are the session state's :attr:`LabState.hidden` and
:attr:`LabState.locked`, which every path respects: a locked value is refused by the state
itself (controls, lesson steps), and links and session files skip it with a notice. A later URL
change or a session file never removes a flag (a file may add some). ``views=`` lists the
visible views. :meth:`Sharing.teacher_link` builds a link with chosen flags (the "Teacher
link" card, :mod:`gle_lab.views.teacher`).

A session file (JSON) holds the same values plus a format tag and the parameters learned until
it was saved (``learned``: W, b, τm, τr per layer); loading it applies the values through the
same validation, restarts the run at t = 0 and sets the learned parameters, which become the
session's settings (Reset and links keep them).
"""
from __future__ import annotations

import json
import math
from urllib.parse import urlencode

import numpy as np
import param
import panel as pn

from .presets import PRESETS
from gle_core import GLEParameterError

from .state import GROUPS
from .views.controls import children

#: a control change reaches the address bar (and the link field) this much later (ms)
URL_DELAY_MS = 300
SESSION_FORMAT = "gle-lab-session"
SESSION_VERSION = 2
#: parameter kinds a session file stores as learned (values of the network when saved)
LEARNED_KINDS = ("W", "b", "tau_m", "tau_r")
#: the control that locks each learned kind (``b`` has none)
LEARNED_CONTROL = {"W": "weight", "b": None, "tau_m": "tau_m", "tau_r": "tau_r"}

#: scalar LabState parameters carried in the URL (order = order of application)
SCALARS = ("waveform", "omega", "amplitude", "error_mode", "beta", "gamma", "lr",
           "learn_W", "learn_b", "learn_tau_m", "learn_tau_r", "speed", "window", "present")
#: per-neuron / per-weight lists: URL key -> (LabState parameter giving the bounds, kind)
LISTS = {"tau_m": "tau_m", "tau_r": "tau_r", "W": "weight"}
#: views that can be shown or hidden (``views=`` in the URL)
VIEWS = ("lesson", "phase", "activity", "errors", "fourier", "microcircuit", "learning")
#: significant digits of the numbers in a link (a value equal to the current one at this
#: precision is left unchanged when the link is applied, so a link reproduces random draws)
LINK_DIGITS = 4
#: significant digits of scalar values (η, γ, ω ...) in a link
SCALAR_DIGITS = 6
#: the address of the app when the page's own is unknown (outside a browser session)
DEFAULT_BASE = "http://localhost:5006/gle-lab"
#: single controls: name -> ControlsView attributes
CONTROLS = {"preset": ("preset",), "seed": ("seed",), "neuron": ("neuron",),
            "tau_m": ("tau_m",), "tau_r": ("tau_r",), "weight": ("weight_select", "weight"),
            "waveform": ("waveform",), "omega": ("omega",), "amplitude": ("amplitude",),
            "error_mode": ("error_mode",), "learn": ("learn",), "lr": ("lr",),
            "beta": ("beta",), "gamma": ("gamma",), "window": ("window",),
            "play": ("play",), "step": ("step",), "reset": ("reset",), "speed": ("speed",)}
#: the reason given for a value a link or file may not change
LOCKED = "locked by the teacher"
TEACHER_NAMES = tuple(GROUPS) + tuple(c for c in CONTROLS if c not in GROUPS)


class _Raw(param.Parameter):
    """A parameter taking whatever Panel parsed from the query (validated by :class:`Sharing`)."""

    @classmethod
    def serialize(cls, value):
        return value

    @classmethod
    def deserialize(cls, value):
        return value


def _url_params():
    names = ("preset", "seed", "neuron") + tuple(LISTS) + SCALARS + ("views", "hide", "lock")
    return {n: _Raw(default=None, allow_None=True) for n in names}


URLState = param.parameterized_class("URLState", _url_params(), bases=param.Parameterized)
URLState.__doc__ = "The state of a GLE Lab session as URL query values (see module doc)."
#: keys of a link / session file, in application order
KEYS = tuple(n for n in URLState.param if n != "name")


def format_list(values):
    """``[1.0, 0.5]`` -> ``"1,0.5"`` (:data:`LINK_DIGITS` significant digits)."""
    return ",".join(_fmt(float(v)) for v in values)


def round_sig(v, digits=LINK_DIGITS):
    """``v`` rounded to ``digits`` significant digits (non-finite values unchanged)."""
    v = float(v)
    return float(f"{v:.{digits}g}") if math.isfinite(v) else v


def _fmt(v):
    v = round_sig(v)
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def _names(value):
    """A comma list from the URL (also a single word or number) -> list of stripped names."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [s.strip() for s in str(value).split(",") if s.strip()]


def _short(v, n=40):
    s = v if isinstance(v, str) else json.dumps(v) if not isinstance(v, float) else _fmt(v)
    return s if len(s) <= n else s[:n - 1] + "…"


class Sharing:
    """URL sync, teacher flags, visible views and session save/load for one :class:`Dashboard`.

    ``problems`` lists the values of the last applied link or file that were ignored
    (``(key, reason)``); ``notice`` is the sentence shown to the user about them.
    """

    def __init__(self, dashboard):
        self.dash = dashboard
        self.url = URLState()
        self.problems = []
        self.notice = ""
        self._guard = False
        self._location = None
        self._session_doc = None         # the server session's document (None in-process)
        self._typed = None               # the link as typed, until the browser reports it
        self._base = {}
        st = dashboard.state
        self._snapshot_base()
        self._mirror()
        st.param.watch(self._on_structure, ["structure", "reseeded"])
        self._mirror_pending = False
        st.param.watch(lambda *e: self._mirror_soon(),
                       ["preset", "seed", "neuron", "tau_m", "tau_r", "weight", *SCALARS])
        self.url.param.watch(self._on_url, list(KEYS))
        st.param.watch(self._on_flags, ["locked", "hidden"])

    # ------------------------------------------------------------------ teacher flags
    @property
    def hidden(self):
        """Hidden controls and cards (the session state's :attr:`LabState.hidden`)."""
        return list(self.state.hidden)

    @hidden.setter
    def hidden(self, names):
        self.state.hidden = list(names)

    @property
    def locked(self):
        """Locked controls (the session state's :attr:`LabState.locked`)."""
        return list(self.state.locked)

    @locked.setter
    def locked(self, names):
        self.state.locked = list(names)

    def _on_flags(self, *events):
        self.apply_teacher_flags()
        self._mirror_soon()

    # ------------------------------------------------------------------ state -> URL
    @property
    def state(self):
        return self.dash.state

    def _snapshot_base(self):
        """The network's values right after a rebuild (what Reset restores before overrides)."""
        net = self.state.net
        self._base = {
            "tau_m": np.concatenate([np.ravel(a) for a in net.tau_m]).astype(float),
            "tau_r": np.concatenate([np.ravel(a) for a in net.tau_r]).astype(float),
            "W": np.concatenate([np.ravel(a) for a in net.W]).astype(float),
        }

    def _on_structure(self, event):
        self._snapshot_base()
        self._mirror()

    def weight_keys(self):
        """(layer, post, pre) of every weight in URL order (= the Weight selector's order)."""
        return [(layer, post, pre) for layer, W in enumerate(self.state.net.W)
                for post in range(W.shape[0]) for pre in range(W.shape[1])]

    def settings_lists(self):
        """Per-neuron τm, τr and weights as set (preset values + user overrides)."""
        st = self.state
        out = {k: v.copy() for k, v in self._base.items()}
        offsets = np.cumsum([0] + list(st.net.layer_sizes[1:]))
        wkeys = {k: i for i, k in enumerate(self.weight_keys())}
        for (kind, layer, index), value in getattr(st, "_overrides", {}).items():
            if kind in ("tau_m", "tau_r"):
                out[kind][offsets[layer] + int(index)] = value
            elif kind == "W":
                post, pre = index
                out["W"][wkeys[(layer, post, pre)]] = value
        return out

    def values(self):
        """Every URL key -> its current value (the dict a link or session file holds)."""
        st = self.state
        vals = {"preset": st.preset, "seed": int(st.seed), "neuron": int(st.neuron)}
        for k, arr in self.settings_lists().items():
            vals[k] = format_list(arr)
        for k in SCALARS:
            v = getattr(st, k)
            vals[k] = (bool(v) if isinstance(v, bool) else
                       round_sig(v, SCALAR_DIGITS) if isinstance(v, float) else v)
        vals["views"] = ",".join(self.visible_views())
        vals["hide"] = ",".join(self.hidden) or None
        vals["lock"] = ",".join(self.locked) or None
        return vals

    def _mirror_soon(self):
        """Mirror a control change into the URL a little later (in a server session).

        The address bar is not part of what the user watches: updating it at once would put
        its round trip (the page reports the new address back) inside the repaint that shows
        the change. Several changes in a drag become one URL update."""
        doc = pn.state.curdoc
        if doc is None or getattr(doc, "session_context", None) is None:
            self._mirror()
            return
        if self._mirror_pending:
            return
        self._mirror_pending = True

        def run():
            self._mirror_pending = False
            self._mirror()
        doc.add_timeout_callback(run, URL_DELAY_MS)

    def _mirror(self):
        if self._guard:
            return
        vals = self.values()
        changed = {k: v for k, v in vals.items() if getattr(self.url, k) != v}
        if changed:
            self._guard = True
            try:
                self.url.param.update(**changed)
            finally:
                self._guard = False

    def query_string(self, values=None):
        """The current state (or ``values``) as a URL query (``?preset=...``)."""
        values = self.values() if values is None else values
        vals = {k: (v if isinstance(v, str) else json.dumps(v))
                for k, v in values.items() if v is not None}
        return "?" + urlencode(vals, safe=",")

    def base_url(self):
        """The page's absolute address without its query (``http://host:port/gle-lab``).

        From the browser's address (``pn.state.location``); :data:`DEFAULT_BASE` while the page
        has not reported it (or outside a browser session)."""
        loc = self._location if self._location is not None else pn.state.location
        if loc is not None:
            if loc.hostname and loc.protocol:
                port = f":{loc.port}" if loc.port else ""
                return f"{loc.protocol}//{loc.hostname}{port}{loc.pathname or '/'}"
            if loc.href and "://" in loc.href:
                return loc.href.split("?")[0].split("#")[0]
        return DEFAULT_BASE

    def teacher_link(self, hide=(), lock=(), views=None):
        """A full absolute link to the current state with these teacher flags (unknown names
        are dropped; ``views`` None: the visible views)."""
        vals = self.values()
        vals["hide"] = ",".join(n for n in hide if n in TEACHER_NAMES) or None
        vals["lock"] = ",".join(n for n in lock if n in TEACHER_NAMES) or None
        if views is not None:
            vals["views"] = ",".join(v for v in VIEWS if v in views)
        return self.link_url(vals)

    def _refresh_link(self, *events):
        link = getattr(self, "link", None)
        if link is not None:
            url = self.link_url()
            if link.value != url:
                link.value = url

    def _watch_location(self, loc):
        """Keep the absolute link right once the page reports its address."""
        if loc is not None and id(loc) not in getattr(self, "_watched_locations", set()):
            self._watched_locations = getattr(self, "_watched_locations", set()) | {id(loc)}
            loc.param.watch(self._refresh_link, ["href", "hostname", "pathname", "port",
                                                 "protocol"])
            loc.param.watch(self._on_search, ["search"])

    def link_url(self, values=None):
        """A full absolute link to the current state (or to ``values``)."""
        return self.base_url() + self.query_string(values)

    # ------------------------------------------------------------------ URL -> state
    def sync_location(self, location=None):
        """Sync :attr:`url` with the browser's address bar (``pn.state.location``).

        Panel applies the link's query at once (values land on :attr:`url`, whose watcher
        validates and applies them); from then on every change is written back to the URL.
        """
        location = location if location is not None else pn.state.location
        if location is None:
            return False
        self._location = location
        self._typed = location.search        # what the browser will report as its address
        self._watch_location(location)
        known = set(KEYS)
        unknown = [k for k in location.query_params if k not in known]
        self._collecting, self._sync_problems = True, []
        # blank the URL object first, so that Panel applies every value of the link (it skips
        # values equal to the current ones, which may differ from the linked preset's defaults)
        self._guard = True
        try:
            self.url.param.update(**{k: None for k in KEYS})
        finally:
            self._guard = False
        try:
            location.sync(self.url, list(KEYS), on_error=self._on_sync_error)
            self._mirror()
            # the address bar shows what was applied (ignored values and keys dropped)
            location.search = self.query_string()
        finally:
            self._collecting = False
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            # the browser sends its own address on load: show the applied state after it
            self._session_doc = pn.state.curdoc
            pn.state.onload(self.push_url)
        problems = []
        for p in self._sync_problems + [(k, "unknown parameter") for k in unknown]:
            if p not in problems:
                problems.append(p)
        self.problems = problems
        self._announce()
        return True

    def push_url(self):
        """Write the applied state into the address bar (``?preset=...``, every key)."""
        if self._location is not None:
            q = self.query_string()
            if self._location.search != q:
                self._location.search = q

    def _on_search(self, event):
        """The address bar ends up showing the applied state, whenever the browser reports
        its own address.

        The browser reports its address (the link as typed) once, as its page is built; that
        report can reach the server after the page went idle and :meth:`push_url` ran
        (measured: 1 load in 12-16 here) and would leave the typed link (without the keys it
        did not name) in the address bar. That one report is answered with the applied state
        on the next tick, after Panel's own URL sync has read it. Only that report: Panel
        writes the address in its own encoding on every change, and answering those too would
        start a ping-pong between the two encodings.
        """
        if event.obj is not self._location or self._typed is None or event.new != self._typed:
            return
        self._typed = None
        doc = self._session_doc
        if doc is not None and event.new != self.query_string():
            doc.add_next_tick_callback(self.push_url)

    def _on_sync_error(self, mapped):      # pragma: no cover - URLState accepts any value
        self.apply(mapped)

    def _on_url(self, *events):
        if self._guard:
            return
        values = {e.name: e.new for e in events}
        if self._location is not None:       # report unknown keys of the address bar too
            values.update({k: v for k, v in self._location.query_params.items()
                           if k not in KEYS})
        self._source = "the URL"
        try:
            with self.state.changes_from("the URL"):
                self.apply(values)
        finally:
            self._source = "the link"

    def apply(self, values, reset=False):
        """Validate and apply ``{key: value}`` (URL keys); returns the list of problems.

        Invalid values fall back to the preset's defaults and are named in a warning notice.
        """
        st = self.state
        problems = []
        values = dict(values)
        for k in [k for k in values if k not in KEYS]:
            problems.append((k, "unknown parameter"))
            values.pop(k)
        self._guard = True
        try:
            # 1. preset and seed (each rebuilds the simulation)
            if "preset" in values and values["preset"] is not None:
                v = values["preset"]
                if isinstance(v, str) and v in PRESETS:
                    if v != st.preset and not self._locked("preset", v, problems):
                        st.preset = v
                else:
                    problems.append(("preset", f"{_short(v)!s} is not one of "
                                               f"{', '.join(PRESETS)}"))
            if "seed" in values and values["seed"] is not None:
                v = values["seed"]
                lo, hi = st.param.seed.bounds
                if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and \
                        lo <= v <= hi:
                    if v != st.seed and not self._locked("seed", v, problems):
                        st.seed = int(v)
                else:
                    problems.append(("seed", f"{_short(v)} is not an integer in {lo}–{hi}"))
            # 2. per-neuron lists
            for key in LISTS:
                if values.get(key) is not None:
                    self._apply_list(key, values[key], problems)
            # 3. selected neuron
            if values.get("neuron") is not None:
                v = values["neuron"]
                n = st.n_neurons
                if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < n:
                    if v != st.neuron and not self._locked("neuron", v, problems):
                        st.neuron = int(v)
                else:
                    problems.append(("neuron", f"{_short(v)} is not a neuron index 0–{n - 1}"))
            # 4. scalar controls
            for key in SCALARS:
                if values.get(key) is not None:
                    self._apply_scalar(key, values[key], problems)
            # 5. teacher flags and views
            if "views" in values and values["views"] is not None:
                names = _names(values["views"])
                bad = [n for n in names if n not in VIEWS]
                if bad:
                    problems.append(("views", f"unknown view(s) {', '.join(bad)} "
                                              f"(known: {', '.join(VIEWS)})"))
                good = [n for n in names if n in VIEWS]
                self.set_views(good if good or not names else list(VIEWS))
            for key in ("hide", "lock"):
                if key in values:
                    names = _names(values[key])
                    bad = [n for n in names if n not in TEACHER_NAMES]
                    if bad:
                        problems.append((key, f"unknown control(s) {', '.join(bad)}"))
                    setattr(self, "hidden" if key == "hide" else "locked",
                            [n for n in names if n in TEACHER_NAMES])
            self.apply_teacher_flags()
        finally:
            self._guard = False
        if reset:
            self.dash.reset()
        self._mirror()
        if getattr(self, "_collecting", False):
            self._sync_problems += problems       # announced once by sync_location
        else:
            self.problems = problems
            self._announce()
        return problems

    def _apply_scalar(self, key, v, problems):
        st = self.state
        p = st.param[key]
        if isinstance(p, param.Boolean):
            if type(v) is int and v in (0, 1):          # ?present=1
                v = bool(v)
            if not isinstance(v, bool):
                problems.append((key, f"{_short(v)} is not true/false"))
                return
        elif isinstance(p, param.Selector):
            objs = p.objects
            allowed = list(objs.values()) if isinstance(objs, dict) else list(objs)
            if v not in allowed:
                problems.append((key, f"{_short(v)} is not one of "
                                      f"{', '.join(map(str, allowed))}"))
                return
        elif isinstance(p, param.Number):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                problems.append((key, f"{_short(v)} is not a number"))
                return
            lo, hi = p.bounds
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                problems.append((key, f"{_short(v)} is out of range {lo:g}–{hi:g}"))
                return
            v = float(v)
            if round_sig(getattr(st, key), SCALAR_DIGITS) == v:
                return              # the current value, as a link writes it
        if getattr(st, key) == v or self._locked(key, v, problems):
            return
        setattr(st, key, v)
        if getattr(st, key) != v:
            problems.append((key, f"{_short(v)} was refused by the simulation"))

    def _parse_list(self, key, raw, n, bounds, problems):
        if isinstance(raw, bool):
            raw = None
        if isinstance(raw, (int, float)):
            items = [float(raw)]
        elif isinstance(raw, (list, tuple)):
            items = list(raw)
        elif isinstance(raw, str):
            items = [s for s in raw.split(",")]
        else:
            problems.append((key, f"{_short(raw)} is not a comma list of numbers"))
            return None
        try:
            nums = [float(s) for s in items]
        except (TypeError, ValueError):
            problems.append((key, f"{_short(raw)} is not a comma list of numbers"))
            return None
        if len(nums) != n:
            problems.append((key, f"{_short(raw)} has {len(nums)} value(s); this preset "
                                  f"needs {n}"))
            return None
        lo, hi = bounds
        bad = [x for x in nums if not math.isfinite(x) or x < lo or x > hi]
        if bad:
            # the value, and which of a list's values (not "-5: -5 is out of range")
            where = "" if len(nums) == 1 else f"{_short(raw)}: "
            problems.append((key, f"{where}{_fmt(bad[0])} is out of range {lo:g}–{hi:g}"))
            return None
        return nums

    def _apply_list(self, key, raw, problems):
        st = self.state
        current = self.settings_lists()[key]
        nums = self._parse_list(key, raw, len(current), st.param[LISTS[key]].bounds, problems)
        if nums is None:
            return
        # a value equal to the current one at the link's precision is the current one
        nums = [old if round_sig(old) == new else new for old, new in zip(current, nums)]
        if nums != [float(x) for x in current] and \
                self._locked(LISTS[key], format_list(nums), problems):
            return
        if key == "W":
            keep = st.weight_select
            for (layer, post, pre), old, new in zip(self.weight_keys(), current, nums):
                if new != old:
                    st.weight_select = (layer, post, pre)
                    st.weight = new
                    if float(st.net.W[layer][post, pre]) != new:
                        problems.append((key, f"weight W{layer + 1}[{post},{pre}] = "
                                              f"{_fmt(new)} was refused"))
            st.weight_select = keep
        else:
            keep = st.neuron
            for j, (old, new) in enumerate(zip(current, nums)):
                if new != old:
                    st.neuron = j
                    setattr(st, key, new)
                    layer, i = st.neuron_location(j)
                    if float(getattr(st.net, key)[layer][i]) != new:
                        problems.append((key, f"{st.labels[j]} = {_fmt(new)} was refused"))
            st.neuron = keep

    def _locked(self, name, value, problems):
        """True (and a problem noted, the state's notice set) if the teacher locked ``name``
        (or ``name`` is the preset or seed, whose rebuild would redraw a locked value)."""
        st = self.state
        if st.is_locked(name) or (name in ("preset", "seed") and st.value_locks()):
            st.refuse_locked(name, value, source=getattr(self, "_source", "the link"))
            problems.append((name, LOCKED))
            return True
        return False

    def _announce(self):
        if not self.problems:
            self.notice = ""
            return
        locked = [k for k, why in self.problems if why == LOCKED]
        # the link's own names (what to correct in it), each with why
        parts = [f"{k}: {why}" for k, why in self.problems if why != LOCKED]
        text = []
        if parts:
            source = getattr(self, "_source", "the link")
            text.append(f"Not used from {source} (the preset's values instead): "
                        + "; ".join(parts) + ".")
        if locked:
            text.append("Locked by the teacher, not changed: " + ", ".join(locked) + ".")
        self.notice = " ".join(text)
        self.state.notify(self.notice, "warning")

    # ------------------------------------------------------------------ views and teacher flags
    def _view_objects(self, name):
        d = self.dash
        view = getattr(d, {"learning": "learning"}.get(name, name), None)
        if view is None:
            return []
        objs = []
        for attr in ("pane", "note", "layout"):
            o = getattr(view, attr, None)
            if o is not None and hasattr(o, "visible"):
                objs.append(o)
        if not objs and hasattr(view, "panel"):
            objs.append(view.panel)
        return objs

    def visible_views(self):
        return [v for v in VIEWS if self._view_visible.get(v, True)]

    @property
    def _view_visible(self):
        if not hasattr(self, "_views_state"):
            self._views_state = {v: True for v in VIEWS}
        return self._views_state

    def set_views(self, names):
        """Show exactly the views in ``names``."""
        for v in VIEWS:
            show = v in names
            self._view_visible[v] = show
            for o in self._view_objects(v):
                if v == "errors" and o is getattr(self.dash.errors, "note", None):
                    o.visible = show and bool(o.object)
                else:
                    o.visible = show
        if hasattr(self, "views_widget") and list(self.views_widget.value) != list(names):
            self.views_widget.value = [v for v in VIEWS if v in names]
        self._mirror()

    def _control_widgets(self, name):
        c = self.dash.controls
        attrs = GROUPS.get(name, ()) if name in GROUPS else CONTROLS.get(name, ())
        return [getattr(c, a) for a in attrs if getattr(c, a, None) is not None]

    def _containers(self):
        """widget -> the with_tip Row that wraps it (so hiding removes the (?) icon too)."""
        found = {}

        def walk(obj):
            for child in children(obj):   # with collapsed cards' controls not in them yet
                if isinstance(child, pn.Row) and any(isinstance(o, pn.widgets.TooltipIcon)
                                                     for o in child.objects):
                    for o in child.objects:
                        found[id(o)] = child
                walk(child)
        walk(self.dash.layout)
        for card in self.dash.controls.cards.values():   # in the layout or not (yet)
            walk(card)
        return found

    def apply_teacher_flags(self):
        """Hide / disable the controls named in :attr:`hidden` / :attr:`locked`."""
        c = self.dash.controls
        rows = self._containers()
        cards = getattr(c, "cards", {})
        hidden_w = {id(w) for n in self.hidden for w in self._control_widgets(n)}
        locked_w = {id(w) for n in self.locked for w in self._control_widgets(n)}
        for attrs in CONTROLS.values():
            for a in attrs:
                w = getattr(c, a, None)
                if w is None:
                    continue
                target = rows.get(id(w), w)
                target.visible = id(w) not in hidden_w
                for sub in (list(w._widgets.values()) if isinstance(w, pn.Param) else [w]):
                    if hasattr(sub, "disabled"):
                        sub.disabled = id(w) in locked_w
        for name, card in cards.items():
            card.visible = name not in self.hidden
        for name, card in (("share", getattr(self, "share_card", None)),
                           ("export", getattr(getattr(self.dash, "export", None), "pane", None)),
                           ("teacher", getattr(getattr(self.dash, "teacher", None), "pane",
                                               None))):
            if card is not None:
                card.visible = name not in self.hidden

    def is_hidden(self, control):
        """Whether ``control`` (a CONTROLS name) is hidden by the teacher flags."""
        c = self.dash.controls
        if any(control in GROUPS.get(g, ()) for g in self.hidden) or control in self.hidden:
            return True
        for g, card in getattr(c, "cards", {}).items():
            if control in GROUPS.get(g, ()) and not card.visible:
                return True
        return False

    # ------------------------------------------------------------------ session files
    def session_dict(self):
        """The session as a JSON-able dict (load it back with :meth:`load_session`)."""
        st = self.state
        learned = {kind: [np.asarray(a, dtype=float).tolist() for a in st.net.parameters(kind)]
                   for kind in LEARNED_KINDS}
        return {"format": SESSION_FORMAT, "version": SESSION_VERSION,
                "preset_title": st.cfg["title"], "t_saved": float(st.sim.t),
                "url": self.link_url(), "state": self.values(), "learned": learned}

    def session_json(self):
        return json.dumps(self.session_dict(), indent=2, ensure_ascii=False)

    def load_session(self, data):
        """Restore a session from a dict, JSON text or bytes; restarts the run at t = 0.

        Returns the list of problems (empty when everything was restored).
        """
        try:
            if isinstance(data, (bytes, bytearray)):
                data = data.decode("utf-8")
            if isinstance(data, str):
                data = json.loads(data)
            if not isinstance(data, dict) or data.get("format") != SESSION_FORMAT or \
                    not isinstance(data.get("state"), dict):
                raise ValueError("not a GLE Lab session file")
        except (ValueError, UnicodeDecodeError) as exc:
            self.state.notify(f"Could not load the session file: {exc}.", "danger")
            return [("file", str(exc))]
        values = dict(data["state"])
        # the teacher's flags of this page hold: a file may add flags, never remove them
        for k, current in (("hide", self.hidden), ("lock", self.locked)):
            names = current + [n for n in _names(values.get(k)) if n not in current]
            values[k] = ",".join(names) or None
        self._source = "the session file"
        try:
            with self.state.changes_from("the session file"):
                problems = self.apply(values, reset=True)
                learned = data.get("learned")
                if isinstance(learned, dict) and \
                        not [p for p in problems if p[0] in ("preset", "seed")]:
                    problems += self._apply_learned(learned)
        finally:
            self._source = "the link"
        if not problems:
            since = (f" from the parameters learned until t = {float(data['t_saved']):.4g} a.u."
                     if isinstance(learned, dict) and isinstance(data.get("t_saved"),
                                                                 (int, float)) else "")
            self.state.notify(f"Session loaded: “{self.state.cfg['title']}”, seed "
                              f"{self.state.seed}, restarted at t = 0{since}.", "success")
        return problems

    def _apply_learned(self, learned):
        """Set the network's parameters to a session file's learned values (they become the
        session's settings: Reset and links keep them). Locked kinds are left alone."""
        st = self.state
        problems = []
        for kind in LEARNED_KINDS:
            layers = learned.get(kind)
            if layers is None:
                continue
            current = st.net.parameters(kind)
            try:
                arrays = [np.asarray(a, dtype=float) for a in layers]
            except (TypeError, ValueError):
                problems.append((f"learned {kind}", "not a list of numbers"))
                continue
            if [a.shape for a in arrays] != [np.shape(c) for c in current]:
                problems.append((f"learned {kind}", "does not match this preset's shape"))
                continue
            control = LEARNED_CONTROL[kind]
            if control is not None and st.is_locked(control) and \
                    any(not np.array_equal(a, c) for a, c in zip(arrays, current)):
                st.refuse_locked(control, "its learned values", source="the session file")
                problems.append((f"learned {kind}", LOCKED))
                continue
            for layer, a in enumerate(arrays):
                for index in np.ndindex(a.shape):
                    v = float(a[index])
                    idx = index if len(index) > 1 else index[0]
                    if v == float(np.asarray(current[layer])[index]):
                        continue
                    try:
                        st.net.set_parameter(kind, layer, v, index=idx)
                    except GLEParameterError as exc:
                        problems.append((f"learned {kind}", str(exc)))
                        continue
                    st._overrides[(kind, layer, idx)] = v
        st._sync_controls_from_network()
        st.tau_version += 1
        self._mirror()
        return problems

    # ------------------------------------------------------------------ widgets
    def panel(self):
        """The "Share" card (link, views, session save/load) above the "Teacher link" card
        (:class:`gle_lab.views.teacher.TeacherView`, also ``dashboard.teacher``)."""
        self.views_widget = pn.widgets.CheckButtonGroup(
            label="Views", options=list(VIEWS), value=self.visible_views(),
            color="default", orientation="vertical", sizing_mode="stretch_width",
            css_classes=["gle-views"])
        self.views_widget.param.watch(lambda e: self.set_views(list(e.new)), "value")
        self.link = pn.widgets.TextInput(label="Link to this state (same seed = same traces)",
                                         value=self.link_url(), disabled=False,
                                         sizing_mode="stretch_width", css_classes=["gle-link"])
        self.url.param.watch(self._refresh_link, list(KEYS))
        self._watch_location(self._location if self._location is not None else
                             pn.state.location)
        self.save = pn.widgets.FileDownload(
            callback=self._session_file, filename="gle-lab-session.json",
            label="Save session (JSON)", embed=False,
            sizing_mode="stretch_width", css_classes=["gle-save-session"])
        self.load = pn.widgets.FileInput(accept=".json", multiple=False,
                                         sizing_mode="stretch_width",
                                         css_classes=["gle-load-session"])
        self.load.param.watch(lambda e: e.new and self.load_session(e.new), "value")
        self.share_card = pn.Card(
            self.link, pn.pane.Str("Load a saved session:", margin=(4, 10, 0, 10)), self.load,
            self.save, pn.pane.Str("Visible views:", margin=(4, 10, 0, 10)), self.views_widget,
            title="Share", collapsed=False, sizing_mode="stretch_width", margin=(4, 4),
            header_background="#eef2f7", css_classes=["gle-share"])
        self.share_card.visible = "share" not in self.hidden
        if getattr(self.dash, "teacher", None) is None:
            from .views.teacher import TeacherView     # (it imports this module's names)
            self.dash.teacher = TeacherView(self.state, self)
        self.dash.teacher.pane.visible = "teacher" not in self.hidden
        # the Teacher-link card goes below the Share card in whatever layout shows this one
        return pn.Column(self.share_card, self.dash.teacher, sizing_mode="stretch_width",
                         margin=0)

    def _session_file(self):
        import io
        self.save.filename = f"gle-lab-{self.state.preset}-seed{self.state.seed}.json"
        return io.StringIO(self.session_json())
