"""engine_core.thinker"""
