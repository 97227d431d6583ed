"""Tests of ``simulator.ocpp``: framing, the 1.6 message model, the codec, the schema proof."""
