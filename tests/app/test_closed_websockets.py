"""A browser that vanished mid-stream leaves no traceback in the server log."""
import asyncio
import logging

from tornado.websocket import WebSocketClosedError

from gle_lab.capacity import quiet_closed_websockets


def test_writes_to_closed_websockets_are_not_logged_other_errors_are(caplog):
    loop = asyncio.new_event_loop()
    try:
        quiet_closed_websockets(loop)
        quiet_closed_websockets(loop)                 # once per loop, idempotent
        with caplog.at_level(logging.ERROR):
            loop.call_exception_handler({"message": "Task exception was never retrieved",
                                         "exception": WebSocketClosedError()})
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
            loop.call_exception_handler({"message": "Task exception was never retrieved",
                                         "exception": ValueError("a real bug")})
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "a real bug" in str(errors[0].exc_info[1])
    finally:
        loop.close()
