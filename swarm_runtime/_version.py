"""The package version, in one place (imported by the package, the CLI and reports)."""

__version__ = "0.1.0"
