"""engine_core.bench"""
