"""engine_core.actor: the Actor (chunk-wise autoregressive diffusion transformer), its cache and schedules."""

from engine_core.actor.kv_cache import KVCache
from engine_core.actor.model import Actor, ActorOutput, ChunkCond
from engine_core.actor.schedule import InFlight, PyramidDenoiser, pyramid_generate, pyramid_plan, sigma_schedule

__all__ = ["Actor", "ActorOutput", "ChunkCond", "KVCache", "InFlight", "PyramidDenoiser", "pyramid_generate",
           "pyramid_plan", "sigma_schedule"]
