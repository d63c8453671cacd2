"""The command-line front ends of the consumer side: `trio-exec exec` and `trio-exec tools`.

Layer: above `environment/`, `tools/` and `client/`, which they drive; `__main__` wires them
in. Nothing below imports this package.
"""
