"""Fakes shipped with the package, so tests (ours and users') never need ``mock.patch``."""
