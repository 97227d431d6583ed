"""Benchmarks: fleets and central systems that measure the simulator against peers."""
