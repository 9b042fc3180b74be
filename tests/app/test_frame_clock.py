"""The served session's frame clock (gle_lab.frame_clock): the document's own periodic
callback, with Panel's current document set inside the frame."""
import panel as pn
from bokeh.document import Document

from gle_lab.frame_clock import FrameClock


def test_start_stop_register_one_periodic_callback_on_the_document():
    doc = Document()
    clock = FrameClock(doc, lambda: None, 33)
    assert not clock.running and not doc.session_callbacks
    clock.start()
    clock.start()                                   # idempotent, as Panel's start/stop use
    assert clock.running
    [cb] = doc.session_callbacks
    assert cb.period == 33
    clock.stop()
    clock.stop()
    assert not clock.running and not doc.session_callbacks


def test_stop_after_the_session_s_document_was_destroyed_does_not_raise():
    doc = Document()
    clock = FrameClock(doc, lambda: None, 33)
    clock.start()

    def session(event):                             # the closed session's change listener
        pass
    doc.on_change(session)
    doc.destroy(session)
    clock.stop()
    assert not clock.running


def test_the_frame_runs_with_panel_s_current_document_set():
    doc = Document()
    seen = []
    clock = FrameClock(doc, lambda: seen.append(pn.state.curdoc), 33)
    clock.start()
    [cb] = doc.session_callbacks
    cb.callback()                                   # what the server's timer calls
    assert seen == [doc]
    assert pn.state.curdoc is not doc               # and only inside the frame
    clock.stop()
