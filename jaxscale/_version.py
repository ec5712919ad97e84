"""The package version: one home, imported by every module that records it (results, JSON, provenance)."""

__version__ = "0.1.0"
