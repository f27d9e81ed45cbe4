"""engine_core.eval"""
