"""The package version: a leaf, so modules that name it (the User-Agent) import nothing above."""

__version__ = "0.1.0"
