"""engine_core.engine"""
