"""engine_core.actor"""
