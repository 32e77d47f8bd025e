"""Central server for a fleet of Pi Camera Service cameras: admins, discovery, pairing, fleet view."""

from pcs_common import __version__

__all__ = ["__version__"]
