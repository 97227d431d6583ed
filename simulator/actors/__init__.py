"""The Trio layer: thin actors that move bytes, wait on deadlines and apply the core's effects.

``streams`` (byte streams and the wrapper seam under the WebSocket clients), ``transport`` and
``websockets_transport`` (the WebSocket clients over a stream; a message pipe for tests),
``link`` (a charger's connection: connect, read, write, reconnect), ``charger`` (one virtual
charge point: the main loop that owns its machine), ``connector`` (the automatic EV sessions of
one connector), ``fleet`` (supervision, ramp, graceful end), ``lag`` (the event-loop lag probe).
All protocol and charger decisions live in ``simulator.machines``; nothing here decides what
goes on the wire.
"""
