"""Layouts for real screens, keyboard, accessibility (issue #10), in headless Chromium.

Projector 1280×720 (presentation mode, also by default below 1600 px), wide 1920×1080,
phone 390×844. Every test waits on conditions (the page reports its size, the server composes
the layout for it, the traces stream); nothing here measures time.
"""
from __future__ import annotations

import pytest

from .test_browser import TOGGLE, wait_streaming

ROOTS = ("() => window.Bokeh && Bokeh.documents.length > 0 && "
         "Bokeh.documents[0].roots().length > 0")
CLOCK = """() => { const host = window.__gle_lab.deepFind('.gle-clock');
  const pre = host && host.shadowRoot && host.shadowRoot.querySelector('pre');
  return pre ? pre.textContent : ''; }"""
FONTS = """() => {
  // every text size of the Activity figure: title, axis labels, tick labels, legend
  for (const m of Bokeh.documents[0].all_models)
    if (m.type === 'Figure' && m.title && m.title.text.startsWith('Activity')) {
      const sizes = [m.title.text_font_size];
      for (const ax of [...m.below, ...m.left]) if (ax.axis_label_text_font_size)
        sizes.push(ax.axis_label_text_font_size, ax.major_label_text_font_size);
      for (const l of [...m.right, ...m.below, ...m.center]) if (l.type === 'Legend')
        sizes.push(l.label_text_font_size);
      return sizes.map(s => typeof s === 'string' ? s : (s.value || ''));
    }
  return null;
}"""
#: a phone says so in its user agent (the server composes the phone layout at once)
PHONE_UA = ("Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0 Mobile Safari/537.36")
OVERFLOW = "() => [document.documentElement.scrollWidth, window.innerWidth]"
#: the smaller dimension and the left and right edges of every visible button, select, text
#: field and slider handle (phone targets; one clipped by its container still has its box)
TARGETS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('button, select, input.bk-input, .noUi-handle')) {
      const b = el.getBoundingClientRect();
      if (b.width > 0 && b.height > 0)
        out.push([el.className ? String(el.className).slice(0, 40) : el.tagName,
                  (el.textContent || '').trim().slice(0, 20), Math.min(b.width, b.height),
                  Math.round(b.left), Math.round(b.right)]);
    }
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document);
  return out;
}"""


@pytest.fixture
def open_page(browser, server, request):
    """``open_page(width, height, query="", phone=False)``: the dashboard in a fresh context
    of that size, once the server composed the layout for it and the traces stream."""
    contexts = []

    def open_(width, height, query="", phone=False):
        ctx = browser.new_context(viewport={"width": width, "height": height},
                                  is_mobile=phone, has_touch=phone,
                                  **({"user_agent": PHONE_UA} if phone else {}))
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(60000)
        page.goto(server.url + query)
        page.wait_for_function(ROOTS)
        page.locator(".gle-view-activity").first.wait_for()
        wait_streaming(page, 20)
        # the page as it stays: every view and card is on it (they follow the first frame)
        page.locator(".gle-complete").wait_for(state="attached")
        return page
    yield open_
    for ctx in contexts:
        ctx.close()


def box(page, selector):
    return page.locator(selector).first.bounding_box()


def inside(page, selector, width, height):
    b = box(page, selector)
    assert b is not None, selector
    return (b["x"] >= -1 and b["y"] >= -1 and b["x"] + b["width"] <= width + 1 and
            b["y"] + b["height"] <= height + 1), (selector, b)


def wait_inside(page, selectors, width, height):
    """The layout settles (plots take their final height) once the page has painted."""
    checks = " && ".join(
        f"(() => {{ const el = window.__gle_lab.deepFind('{s}'); if (!el) return false;"
        f" const b = el.getBoundingClientRect(); return b.width > 0 && b.left >= -1 &&"
        f" b.top >= -1 && b.right <= {width + 1} && b.bottom <= {height + 1}; }})()"
        for s in selectors)
    try:
        page.wait_for_function(f"() => {checks}", timeout=60000)
    finally:
        for s in selectors:
            ok, info = inside(page, s, width, height)
            assert ok, info


@pytest.mark.parametrize("query", ["", "?present=1"])
def test_projector_shows_cards_activity_and_tau_sliders_without_scrolling(open_page, query):
    page = open_page(1280, 720, query)
    wait_inside(page, [".gle-view-phase", ".gle-view-activity", ".gle-tau-m", ".gle-tau-r"],
                1280, 720)
    width, inner = page.evaluate(OVERFLOW)
    assert width <= inner
    assert page.evaluate("() => [...Bokeh.documents[0].all_models].some(m => m.css_classes &&"
                         " m.css_classes.includes('gle-present') && m.active === true)")
    sizes = page.evaluate(FONTS)
    assert sizes and all(float(s.rstrip("px")) >= 16 for s in sizes), sizes
    # the lesson is one line: its bar, no more
    lesson = box(page, ".gle-view-lesson")
    assert lesson["height"] <= 64, lesson


def test_wide_screen_also_shows_errors_and_fourier(open_page):
    page = open_page(1920, 1080)
    wait_inside(page, [".gle-view-phase", ".gle-view-activity", ".gle-view-errors",
                       ".gle-view-fourier", ".gle-tau-m", ".gle-tau-r"], 1920, 1080)
    width, inner = page.evaluate(OVERFLOW)
    assert width <= inner
    assert page.evaluate("() => [...Bokeh.documents[0].all_models].some(m => m.css_classes "
                         "&& m.css_classes.includes('gle-present') && m.active === false)")


def test_phone_is_one_column_without_overflow_and_with_44px_targets(open_page):
    page = open_page(390, 844, phone=True)
    page.wait_for_function(f"() => ({OVERFLOW})()[0] <= 390")
    phase, activity = box(page, ".gle-view-phase"), box(page, ".gle-view-activity")
    tau_r = box(page, ".gle-tau-r")
    # one column: cards, then the plot at full width, then the τ sliders
    assert phase["y"] + phase["height"] <= activity["y"] + 1
    assert activity["width"] >= 390 - 2
    assert activity["y"] + activity["height"] <= tau_r["y"] + 1
    targets = page.evaluate(TARGETS)
    small = [t for t in targets if t[2] < 44]
    assert small == [], small
    # every target is on the screen, none beyond the column's edges (a clipped row of
    # buttons cannot be scrolled on a phone)
    beyond = [t for t in targets if t[3] < 0 or t[4] > 390]
    assert beyond == [], beyond
    # the lesson's last step is one tap away and applies
    last = page.locator(".gle-view-lesson .gle-lesson-try button").last
    last.scroll_into_view_if_needed()
    last.tap()
    page.wait_for_function("() => [...Bokeh.documents[0].all_models].some(m => m.css_classes "
                           "&& m.css_classes.includes('gle-lesson-try-2') && "
                           "m.label.startsWith('✓'))")


def test_keyboard_space_twice_arrow_r_and_help(open_page):
    page = open_page(1600, 1000)
    playing = f"() => ({TOGGLE})()"
    assert page.evaluate(playing) is True
    # focus on a slider handle: Space still toggles, twice in a row, and the focus stays
    page.locator(".gle-omega .noUi-handle").focus()
    page.keyboard.press("Space")
    page.wait_for_function(f"() => ({TOGGLE})() === false")
    page.keyboard.press("Space")
    page.wait_for_function(f"() => ({TOGGLE})() === true")
    page.keyboard.press("Space")
    page.wait_for_function(f"() => ({TOGGLE})() === false")
    focused = page.evaluate("() => { let el = document.activeElement; while (el && el.shadowRoot"
                            " && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;"
                            " return el ? el.className : null; }")
    assert focused and "noUi-handle" in focused
    # → steps while paused (focus on the page body: → is not a slider's here), once the
    # shortcut's focus keeping is done (it would put the focus back on the slider)
    page.wait_for_function("() => !window.__gle_lab.focusPending")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.wait_for_function(f"() => /t = [0-9.]+/.test(({CLOCK})())")
    before = float(page.evaluate(CLOCK).split("=")[1].split()[0])
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => parseFloat(({CLOCK})().split('=')[1]) > {before}")
    # R resets to t = 0 (the traces empty while paused)
    page.keyboard.press("r")
    page.wait_for_function(f"() => parseFloat(({CLOCK})().split('=')[1]) === 0")
    # ? opens the help overlay listing the shortcuts; Escape closes it
    page.keyboard.press("?")
    help_ = page.locator("#gle-help")
    help_.wait_for(state="visible")
    text = help_.inner_text()
    for key in ("Space", "→", "R", "?"):
        assert key in text
    assert "on a slider, ← and → move the slider" in text          # not a step there
    page.keyboard.press("Escape")
    help_.wait_for(state="hidden")


def test_a_value_measured_before_a_change_is_marked_as_such(open_page):
    """Past τm the card's word flips at once while the last fit (a lag) stays until the next:
    it is greyed and preceded by "was", so "-39.4°" over "LEADS" is no contradiction."""
    page = open_page(1280, 720, "?present=1")
    card = "() => window.__gle_lab.deepFind('#gle-forward')"
    page.wait_for_function(f"() => ({card})().dataset.verdict === 'measured'", timeout=60000)
    assert page.evaluate(f"() => ({card})().querySelector('.gle-big').textContent"
                         ).startswith("-")                          # τr < τm: a lag
    handle = page.locator(".gle-tau-r .noUi-handle").first
    handle.focus()
    page.keyboard.press("End")                                       # τr = 10 > τm
    page.wait_for_function(f"() => ({card})().querySelector('.gle-word').textContent "
                           "=== 'LEADS'")
    big = page.evaluate(f"""() => {{ const b = ({card})().querySelector('.gle-big');
        return [b.textContent, b.classList.contains('gle-stale'),
                getComputedStyle(b, '::before').content]; }}""")
    # the last fit (it may have been refined while the key went in: still a lag)
    assert big[0].startswith("-") and big[1:] == [True, '"was "'], big


def test_sliders_name_themselves_and_read_their_real_value(open_page):
    page = open_page(1600, 1000)
    handle = page.locator(".gle-tau-r .noUi-handle").first
    assert handle.get_attribute("aria-label") == "τr prospective (a.u.)"
    assert handle.get_attribute("aria-valuetext") == "0.1"        # not the log value -1.00


def test_lesson_step_is_a_button_with_a_check_mark_and_a_toast_that_moves_nothing(open_page):
    page = open_page(1600, 1000)
    before = box(page, ".gle-view-phase")
    page.locator(".gle-lesson-try-0 button").click()
    toast = page.locator(".gle-toast")
    toast.wait_for()
    assert "Lesson step" in toast.inner_text()
    page.wait_for_function("() => [...Bokeh.documents[0].all_models].some(m => m.css_classes "
                           "&& m.css_classes.includes('gle-lesson-try-0') && "
                           "m.label.startsWith('✓'))")
    assert box(page, ".gle-view-phase")["y"] == before["y"]      # nothing pushed down
    style = page.evaluate("() => getComputedStyle(window.__gle_lab.deepFind('.gle-toast'))"
                          ".position")
    assert style == "fixed"


@pytest.mark.parametrize("query,width,phone", [("", 1600, False), ("?present=1", 1280, False),
                                               ("", 390, True)])
def test_no_serious_or_critical_accessibility_violations(open_page, query, width, phone):
    from axe_playwright_python.sync_playwright import Axe
    page = open_page(width, 844 if phone else 900, query, phone=phone)
    results = Axe().run(page)
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
           for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], bad
    # and a map of the page for screen readers: one main landmark, everything inside a
    # landmark, headings in order (h1 GLE Lab, h2 the lesson and the controls, h3 the
    # cards; on phones the controls come first)
    structure = [v["id"] for v in results.response["violations"]
                 if v["id"] in ("landmark-one-main", "region", "heading-order")]
    assert structure == [], structure


def test_help_button_opens_the_shortcuts_and_copy_link_copies(open_page):
    """The two buttons that act in the browser only (handled by the page script, not by Panel
    JS links): "?" opens the help overlay; "Copy link" copies the teacher link and says so.
    The card's QR code is drawn."""
    page = open_page(1600, 1000)
    page.locator(".gle-help-button button").click()
    help_ = page.locator("#gle-help")
    help_.wait_for(state="visible")
    assert "Keyboard shortcuts" in help_.inner_text()
    page.keyboard.press("Escape")
    help_.wait_for(state="hidden")
    label = ("() => [...Bokeh.documents[0].all_models].find(m => m.css_classes && "
             "m.css_classes.includes('gle-teacher-copy')).label")
    header = page.locator(".gle-view-teacher .card-header").first
    header.scroll_into_view_if_needed()
    header.click()                                # the card opens (it starts collapsed)
    copy = page.locator(".gle-teacher-copy button")
    copy.wait_for(state="visible")
    # the QR code is an image the browser decodes and draws (not a broken-image icon)
    qr = page.locator(".gle-teacher-qr img")
    qr.wait_for(state="attached")
    page.wait_for_function("img => img.complete", arg=qr.element_handle())
    assert qr.evaluate("img => img.naturalWidth") > 100
    copy.scroll_into_view_if_needed()
    assert page.evaluate(label) == "Copy link"
    # the full link the button copies (the page script reads it from the link field)
    link = page.evaluate("() => [...Bokeh.documents[0].all_models].find(m => m.css_classes "
                         "&& m.css_classes.includes('gle-teacher-link')).value")
    assert link.startswith("http://127.0.0.1:") and "preset=" in link
    copy.click()
    page.wait_for_function(f"() => ({label})() === 'Copied ✓'")
    page.wait_for_function(f"() => ({label})() === 'Copy link'")


#: counts size changes of the page's body and of the phase cards from now on (a
#: ResizeObserver reports every element once when observation starts: not counted)
WATCH_SIZES = """() => {
  const body = window.__gle_lab.deepFind('.gle-body');
  const cards = window.__gle_lab.deepFind('.gle-view-phase');
  window.__gle_sizes = {body: [], cards: []};
  for (const [name, el] of [['body', body], ['cards', cards]]) {
    let first = true;
    new ResizeObserver(entries => {
      if (first) { first = false; return; }
      for (const e of entries) window.__gle_sizes[name].push(Math.round(e.contentRect.height));
    }).observe(el);
  }
  return [body.getBoundingClientRect().height, cards.getBoundingClientRect().height];
}"""
SET_TAU_R = """(v) => { for (const m of Bokeh.documents[0].all_models)
  if (m.title === 'τr prospective (a.u.)' && m.start !== undefined) m.value = v; }"""
CARD_IS = """(cls) => { const host = window.__gle_lab.deepFind('.gle-view-phase');
  const card = host.shadowRoot.querySelector('#gle-forward');
  return card !== null && card.classList.contains(cls); }"""
TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def test_a_tau_change_does_not_move_the_page_below_the_cards(open_page):
    """τr across τm and back, three times at 1280×720: the cards flip (their words and
    numbers change, and so does how they wrap), yet neither the cards nor the page below
    them change size. A card row that grew and shrank with its text made BokehJS lay out
    the whole page again and repaint every plot, in the very frame that shows the change."""
    page = open_page(1280, 720)
    page.evaluate(SET_TAU_R, -0.5)                     # τr = 0.32 < τm = 1: the rate lags
    page.wait_for_function(CARD_IS, arg="lag")
    page.evaluate(TWO_FRAMES)
    body, cards = page.evaluate(WATCH_SIZES)
    assert body > 0 and cards > 0
    for _ in range(3):
        # τr = 1.6, then 0.32 again (values whose texts wrap differently at this width)
        for value, cls in ((0.2, "lead"), (-0.5, "lag")):
            page.evaluate(SET_TAU_R, value)
            page.wait_for_function(CARD_IS, arg=cls)
            page.evaluate(TWO_FRAMES)
            page.evaluate(TWO_FRAMES)
    sizes = page.evaluate("() => window.__gle_sizes")
    assert sizes == {"body": [], "cards": []}, (body, cards, sizes)
