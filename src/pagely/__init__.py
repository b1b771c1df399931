"""Pagely, the bookstore backend. The version is the package's, as pyproject.toml states it."""

from importlib.metadata import version

__version__ = version("pagely")
