"""The Trio layer: thin actors that move bytes, wait on deadlines and apply the core's effects.

``transport`` (WebSocket and in-memory), ``charger`` (one virtual charge point and its connectors),
``connector`` (the automatic EV sessions of one connector), ``fleet`` (supervision, ramp, graceful
end). All protocol and charger decisions live in ``simulator.machines``; nothing here decides what
goes on the wire.
"""
