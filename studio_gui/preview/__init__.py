"""Live preview: daemon process control, the socket thread (Qt signals only), video, audio, mic, stats."""
