"""Mirrors ``picamera2/outputs/__init__.py`` (0.3.36) for the outputs the project uses."""

from .fileoutput import FileOutput
from .output import Output
from .pyavoutput import PyavOutput

__all__ = ["FileOutput", "Output", "PyavOutput"]
