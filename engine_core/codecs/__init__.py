"""engine_core.codecs"""
