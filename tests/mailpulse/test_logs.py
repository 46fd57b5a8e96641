from __future__ import annotations

import logging

import orjson

from mailpulse.logs import JsonFormatter


def test_json_log_lines_carry_level_logger_message_and_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "mailpulse.x", logging.ERROR, __file__, 1, "load %s failed", ("b1",), sys.exc_info()
        )
    line = orjson.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"]) == ("error", "mailpulse.x", "load b1 failed")
    assert "ValueError: boom" in line["exception"]
    assert line["ts"].endswith("+00:00")
