"""The control API, the live dashboard and the Prometheus metrics of a running simulation.

``sim start --api [HOST:]PORT`` (or an ``[api]`` table) serves them beside the fleet, in the
run's own nursery: :class:`~simulator.api.server.ApiService` is a runtime service. Each
endpoint module is a part (:mod:`.parts`) joined by
:func:`~simulator.api.server.build_app`. Everything the API changes goes through the
:class:`~simulator.simulation.Simulation` facade and is recorded in the ledger as coming from
the API.

Importing this package costs nothing: Litestar and hypercorn load with :mod:`.server`.
"""
