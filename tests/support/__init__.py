"""Support code for the tests: server launchers, raw WebSocket clients and the in-process daemon.

Wire modules (``servers``, ``wsclient``, ``rawws``, ``codex_harness``…) import nothing of
``trio_exec``: those tests speak to the daemon only over the wire, the way they speak to the
reference servers, so one suite runs against both. ``daemon`` is the one exception: it runs the
daemon inside the test's Trio run (in memory or on TCP) and waits on its test events.
``servers`` is also the benchmarks' launcher.
"""
