"""Benchmarks of the controller's Docker cost against raw Docker SDK calls (`make bench`)."""
