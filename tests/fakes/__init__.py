"""Fake SMS gateways on 127.0.0.1, run in a test's event loop or as a separate process."""
