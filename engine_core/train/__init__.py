"""engine_core.train"""
