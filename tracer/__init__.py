"""afterglow's function side: the invocation span, lean spans behind the OpenTelemetry API, the hand-off."""
