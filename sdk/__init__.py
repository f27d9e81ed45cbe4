"""xstreamer SDK: protocol v2 and the Python clients. Imports without torch."""

__version__ = "0.1.0"
