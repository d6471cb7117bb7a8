"""Helpers for the web API and browser tests (see README.md here)."""
