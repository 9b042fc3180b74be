"""Phase-inversion readouts: big, projector-friendly numbers.

Left: the phase of the selected neuron's rate (prospective voltage ŭ, equal to the rate for a
linear φ) relative to its input drive, measured from the running simulation, beside the
analytic value of D⁺τr I⁻τm. Right: the phase of its GLE error e relative to the instantaneous
error ε beside the analytic D⁺τm I⁻τr. Positive = leads. For τr < τm the rate lags and the
error leads by the same phase; moving τr above τm flips both signs.
"""
from __future__ import annotations

import html
import json

import numpy as np
import panel as pn

from ..compat import patch_enabled
from ..state import PHASE_ZERO, format_degrees

CSS = """
.gle-phase {display: flex; gap: 14px; align-items: stretch; width: 100%;
            font-family: system-ui, sans-serif;}
.gle-card {flex: 1 1 0; border-radius: 10px; padding: 8px 16px; border: 2px solid #ddd;
           background: #fafafa; min-width: 230px;}
.gle-card.lag {border-color: #0072B2; background: #eef5fb;}
.gle-card.lead {border-color: #D55E00; background: #fdf1ea;}
.gle-card.zero {border-color: #595959; background: #f4f4f4;}
.gle-title {font-size: 15px; color: #333; font-weight: 600;}
.gle-big {font-size: 46px; font-weight: 700; line-height: 1.1; font-variant-numeric: tabular-nums;}
.gle-card.lag .gle-big, .gle-card.lag .gle-verdict {color: #005a8c;}
.gle-card.lead .gle-big, .gle-card.lead .gle-verdict {color: #a84400;}
.gle-verdict {font-size: 20px; font-weight: 700; letter-spacing: 0.5px;}
.gle-analytic {font-size: 15px; color: #444; margin-top: 2px;}
.gle-relation {flex: 1.1 1 0; font-size: 15px; color: #333; padding: 8px 4px; min-width: 220px;}
.gle-relation b {font-size: 19px;}
.gle-status {font-size: 13px; color: #4d4d4d; margin-top: 4px;}
.gle-big.gle-stale {color: #6b6b6b !important;}
/* the greyed value is the last fit before a change: said in words, so that "-39.4°" over the
   new word "LEADS" does not read as a contradiction (the page greys it too: page.js) */
.gle-big.gle-stale::before {content: "was "; font-size: 0.5em; font-weight: 600;}
.gle-big.gle-none {font-size: 30px; color: #4d4d4d !important;}
.gle-mode {display: inline-block; font-size: 13px; font-weight: 700; padding: 0 6px;
           margin-left: 6px; border-radius: 4px; background: #333; color: #fff;}
:host(.gle-phase-present) .gle-big {font-size: 40px;}
:host(.gle-phase-present) .gle-card {padding: 4px 14px;}
:host(.gle-phase-present) .gle-relation {font-size: 16px;}
@media (max-width: 480px) {
  .gle-phase {flex-wrap: wrap; gap: 8px;}
  .gle-card, .gle-relation {flex: 1 1 100%; min-width: 0;}
  .gle-big {font-size: 36px;}
}
"""

_deg = format_degrees

#: what the relation line says for τr < τm, τr > τm and τr = τm (the page says the same when
#: it answers a slider itself: assets/js/page.js, STORIES; tests/ui/test_tau_answer.py)
STORIES = {"<": "rate <b>lags</b>, error <b>leads</b>",
           ">": "rate <b>leads</b>, error <b>lags</b>",
           "=": "no lag: the LE limit"}


class LiveHTML(pn.pane.HTML):
    """An HTML pane for text that changes several times a second (the phase cards).

    Panel 1.9 answers every change of ``object`` by re-deriving all of the pane's
    properties (design, stylesheets, sizing) and setting them on the model: ~2 ms of server
    CPU per change, 3× a second. Only the text changes here, so only the text is set (the
    same escaped text Panel would send). Other parameters (css classes, visibility) keep
    Panel's own path. On another Panel version (:func:`gle_lab.compat.patch_enabled`)
    Panel's ``_update`` is used.
    """

    def _update(self, ref, model):
        if not patch_enabled("panel_html_text_update"):
            return super()._update(ref, model)
        text = self._transform_object(self.object)["object"]
        if model.text != text:
            model.text = text


class PhaseView(pn.viewable.Viewer):
    title = "Phase inversion"

    def __init__(self, state, **params):
        super().__init__(**params)
        self.state = state
        self.pane = LiveHTML("", sizing_mode="stretch_width", stylesheets=[CSS],
                                 margin=(4, 10), css_classes=["gle-view-phase"])
        self.update()

    def _card(self, key, title, card, omega):
        """One card from :meth:`gle_lab.state.PhaseReadout.card` (decisions made there)."""
        measured, analytic = card["measured"], card["analytic"]
        lead = (f"{measured / omega:+.2f} a.u." if np.isfinite(measured) and omega
                and not card["stale"] else "")
        # 3 decimals (0.06°, below the 0.1° shown): the fit's last-digit jitter would
        # otherwise re-send and re-render the readouts at every measurement
        mval = "nan" if not np.isfinite(measured) else f"{measured:.3f}"
        if np.isfinite(measured):
            big_cls, big = (" gle-stale" if card["stale"] else ""), _deg(measured)
        elif card["verdict"] in ("zero", "not periodic"):
            big_cls, big = " gle-none", card["note"]
        else:
            big_cls, big = "", "—"
        note = card["note"]
        if card["verdict"] in ("zero", "not periodic"):
            note = "no phase to measure"
        ana = (f'analytic {_deg(analytic)} ({analytic:+.3f} rad) · '
               f'{card["analytic_word"].lower()}' if np.isfinite(analytic) else "analytic —")
        return (f'<div class="gle-card {card["cls"]}" id="gle-{key}" '
                f'data-verdict="{card["verdict"]}">'
                f'<div class="gle-title">{title}</div>'
                f'<div class="gle-big gle-{key}-measured{big_cls}" data-phase="{mval}">'
                f'{big}</div>'
                f'<div class="gle-verdict"><span class="gle-word">{card["word"]}</span> '
                f'<span class="gle-note" style="font-size:14px;font-weight:400">'
                f'{note}{" · " + lead if lead else ""}</span></div>'
                f'<div class="gle-analytic gle-{key}-analytic" data-phase="{analytic:.4f}">'
                f'{ana}</div>'
                f'</div>')

    def render(self):
        st = self.state
        ro = st.readout
        tm, tr = st.neuron_taus()
        lab = st.labels[st.neuron]
        omega = ro.omega if np.isfinite(ro.omega) else None
        mode = st.net.error_mode
        label = getattr(st, "mode_label", mode.upper())
        rel = "<" if tr < tm * (1 - 1e-9) else (">" if tr > tm * (1 + 1e-9) else "=")
        extra = ""
        if label == "IE":
            extra = "<br>IE mode: errors are not advanced (e = ε)"
        elif label == "AM":
            extra = ("<br>AM mode: learning follows the exact adjoint λ (windows of "
                     f"TW = {st.am_window:g} a.u.)")
        w_txt = f"ω = {omega:.3g} rad/a.u." if omega else "constant input"
        relation = (f'<div class="gle-relation">Neuron <b>{lab}</b>: '
                    f'<b class="gle-tr">τr = {tr:.3g}</b> <span class="gle-rel">{rel}</span> '
                    f'<b class="gle-tm">τm = {tm:.3g}</b><br>→ '
                    f'<span class="gle-story">{STORIES[rel]}</span>{extra}<br>'
                    f'<span class="gle-omega-text" style="color:#666">{w_txt}</span>'
                    f'{self._alignment()}'
                    f'<div class="gle-status">{ro.status}</div></div>')
        badge = f'<span class="gle-mode">{label}</span>'
        err_title = ("Error e vs. ε (D⁺τm I⁻τr)" if mode == "gle"
                     else "Error e vs. ε (e = ε)")
        # what the page needs to answer a τ or ω slider itself, in the frame of the change
        # (assets/js/page.js, "sliders answered here"): the τ and ω this text is for,
        # the Euler step, the error mode and the in-phase threshold of sign_word
        answer = json.dumps({"tm": tm, "tr": tr, "omega": omega, "dt": st.net.dt,
                             "error": "gle" if mode == "gle" else "ie",
                             "zero": PHASE_ZERO})
        return (f'<div class="gle-phase" data-answer="{html.escape(answer)}">'
                + self._card("forward", "Rate ŭ vs. its input (D⁺τr I⁻τm)" + badge,
                             ro.card("forward"), omega)
                + self._card("error", err_title + badge, ro.card("error"), omega)
                + relation + '</div>')

    def _alignment(self):
        """The GLE / exact-gradient alignment line (state.alignment), tooltip = definition."""
        cos = getattr(self.state, "alignment", float("nan"))
        if not np.isfinite(cos):
            return ""
        tip = ("Cosine similarity between the weight update of GLE over the last window "
               "(Σ e rᵀ, Eq. 8, before the optimizer) and minus the exact gradient of that "
               "window's loss (reverse mode through the same Euler steps, TW a.u.), both at "
               "the window's parameters. 1: GLE descends along the exact gradient.")
        return (f'<div class="gle-alignment" title="{tip}" data-cos="{cos:.4f}">'
                f'ΔW<sub>GLE</sub> ∥ −∇W L<sub>exact</sub>: <b>cos = {cos:.3f}</b></div>')

    def update(self):
        html = self.render()
        if html != self.pane.object:
            self.pane.object = html

    def __panel__(self):
        return self.pane

    @property
    def panel(self):
        return self.pane
