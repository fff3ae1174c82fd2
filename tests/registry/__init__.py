"""Tests of the model registry (a package, so that test model classes import by name)."""
