"""Support code for the wire tests: server launchers and a raw WebSocket test client.

Nothing here imports ``trio_exec``: the tests speak to the daemon only over the wire, the way
they speak to the reference server, so one suite can run against both.
"""
