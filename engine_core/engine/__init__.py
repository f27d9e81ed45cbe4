"""engine_core.engine: the streaming engine API (`Engine.load(...).open_session(...)`, `Session.next_chunk()`)."""

from engine_core.engine.chunk import AVChunk, EventItem, TextItem
from engine_core.engine.engine import Engine
from engine_core.engine.session import Session

__all__ = ["Engine", "Session", "AVChunk", "TextItem", "EventItem"]
