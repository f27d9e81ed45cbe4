"""engine_core.daemon"""
