"""Tests of the OCPP chaos simulator (a package so that test modules can share helpers such as
``tests.oracle``)."""
