"""Sandbox policy: what a request may touch, and how a child is confined.

Owns: the access policy the fs service is given (`access.py`: may this path be read or
written), over the checks of a 0.120 `sandboxPolicy` (`policy.py`) and of a 0.169 `sandbox`
context (`context_policy.py`), and the child's confinement plan and its Linux
mechanisms (`confine.py`: Landlock, seccomp, read-only binds in `landlock.py`).
May import: `proto/` and nothing above it; a service (tests/test_layers.py).
"""
