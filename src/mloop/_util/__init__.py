"""Helpers that two or more subpackages really share; each module has one job."""
