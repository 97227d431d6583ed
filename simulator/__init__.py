"""OCPP chaos simulator: a fleet of virtual OCPP 1.6-J chargers that misbehave on purpose.

Layering (checked by ``tests/test_layering.py``): ``simulator.ocpp``, ``simulator.machines`` and
``simulator.chaos`` are the sans-IO core and never import trio; ``simulator.actors`` and
``simulator.csms`` drive them with Trio; ``simulator.cli`` is the command line on top.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ocpp-chaos-simulator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
