"""Pi Camera Service: Raspberry Pi camera edge service."""

__version__ = "0.1.0"
