"""Panel's write queue: a message queued while the previous one is being written is sent
(gle_lab.write_queue), with Panel's real queue functions and a socket of our own."""
import asyncio
from types import SimpleNamespace

import pytest
from bokeh.document import Document
from panel.io import document as pdoc

from gle_lab import write_queue


class SlowSocket:
    """A socket whose first write completes only when the test says so."""


class Connection:
    """What Panel's queue uses of a Bokeh server connection: its socket and protocol."""

    def __init__(self):
        self._socket = SlowSocket()
        self.protocol = SimpleNamespace(create=lambda kind, events: events[0])


def _send_two_while_the_first_is_written(dispatch, monkeypatch, as_it_completes=True):
    """Queue message "a"; as its write completes, queue "b". Returns what was written and
    what is left in Panel's queue."""
    monkeypatch.setattr(pdoc, "_dispatch_msgs", dispatch)
    loop = asyncio.new_event_loop()
    written = []

    async def scenario():
        doc = Document()
        first_write = loop.create_future()

        def write(conn, events=None, msg=None):
            written.append(msg)
            if len(written) == 1:
                return [first_write]
            done = loop.create_future()
            done.set_result(None)
            return [done]
        monkeypatch.setitem(pdoc.extra_socket_handlers, SlowSocket, write)
        conn = Connection()
        pdoc.schedule_write_events(doc, [conn], ["a"])
        while not written:
            await asyncio.sleep(0)          # the queue's task is writing "a"
        # the write of "a" completes, and in the same turn of the event loop (before the
        # queue's task resumes) a change queues "b"
        if as_it_completes:
            first_write.set_result(None)
            pdoc.schedule_write_events(doc, [conn], ["b"])
        else:                               # while it is written: Panel sends it itself
            pdoc.schedule_write_events(doc, [conn], ["b"])
            await asyncio.sleep(0.005)
            first_write.set_result(None)
        for _ in range(20):
            await asyncio.sleep(0.001)
        left = pdoc._WRITE_MSGS.pop(doc, None)
        pdoc._WRITE_BLOCK.pop(doc, None)
        return left
    try:
        left = loop.run_until_complete(scenario())
    finally:
        loop.close()
    return written, left


def test_panels_own_queue_keeps_the_last_message(monkeypatch):
    # the reason for the patch: if this fails, Panel has fixed its queue
    written, left = _send_two_while_the_first_is_written(write_queue.original_dispatch(),
                                                         monkeypatch)
    assert written == ["a"]
    assert [m for msgs in left.values() for m in msgs] == ["b"]


@pytest.mark.parametrize("as_it_completes", [True, False])
def test_every_queued_message_is_sent_once_in_order(monkeypatch, as_it_completes):
    if not write_queue.installed():
        write_queue.install()
    assert write_queue.installed()
    written, left = _send_two_while_the_first_is_written(write_queue._dispatch_msgs,
                                                         monkeypatch, as_it_completes)
    assert written == ["a", "b"]
    assert left is None                     # nothing left, not even an empty queue
