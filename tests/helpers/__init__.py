"""Shared test helpers: real servers and readers that tests talk to over real sockets."""
