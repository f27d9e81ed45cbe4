"""engine_core: the X-Streamer model (Thinker, Actor, codecs), its training and evaluation, and the daemon.

Data path: user input -> thinker/ -> actor/ (+ codecs/) -> engine/ (the block loop) -> daemon/ (packets, ZeroMQ).
"""
