"""Interop tests: the simulator against peers nobody on the team wrote (the PyPI ``ocpp`` package),
each run in its own process on 127.0.0.1."""
