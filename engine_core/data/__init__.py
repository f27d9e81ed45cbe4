"""engine_core.data"""
