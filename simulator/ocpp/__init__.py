"""OCPP-J framing and protocol-version plugins: pure data, no I/O, never imports trio.

``frames`` holds the RPC envelope (CALL / CALLRESULT / CALLERROR) that every OCPP-J version
shares; ``v16`` holds the OCPP 1.6 message model; ``plugin`` says what a version provides so that
later versions sit beside ``v16`` without changes elsewhere.
"""
