"""``afterglow``: the same function, decorated with ``trace_handler`` (the layer provides ``tracer``)."""

from __future__ import annotations

import app

from tracer import trace_handler

handler = trace_handler(app.handler)
