"""xstreamer: the product's command line (`xstreamer ...`). The SDK lives in `sdk`, the model in `engine_core`."""

__version__ = "0.1.0"
