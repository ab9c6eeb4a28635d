"""Shared pytest fixtures; this folder is on sys.path, so tests import `helpers.*`."""
