"""Pi Camera Service: Raspberry Pi camera edge service."""

from pcs_common import __version__  # one version for both services

__all__ = ["__version__"]
