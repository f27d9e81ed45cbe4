"""xstreamer studio: a PySide6 app to edit personas, choose identity portraits and preview a live daemon.

The studio is a *client* of the daemon: it imports `sdk`, never `engine_core` (a local daemon is started
as a subprocess through the `xstreamer serve` CLI). Entry point: `studio_gui.app:main` (`xstreamer-studio`).
"""

__version__ = "0.1.0"
