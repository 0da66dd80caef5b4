"""A function with a background thread that ticks every millisecond, as a metrics agent or a timer might."""

import threading
import time

TICKS = 0


def _tick() -> None:
    global TICKS
    while True:
        time.sleep(0.001)
        TICKS += 1


threading.Thread(target=_tick, daemon=True).start()


def handler(event, context):
    return TICKS
