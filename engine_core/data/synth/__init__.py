"""Procedural talking-character corpus: identities, drawing, visemes, Piper speech, clips, gallery.

Public entry points: `render_clip` (ground truth for one character/text/voice), `generate_corpus`,
`identity_params`, `sentence_text`, `gallery_characters`.
"""

from engine_core.data.synth.characters import IdentityParams
from engine_core.data.synth.identities import identity_params
from engine_core.data.synth.corpus import CorpusOptions, generate_corpus, read_manifest
from engine_core.data.synth.gallery import GalleryCharacter, gallery_characters, render_portrait, write_gallery
from engine_core.data.synth.render import Clip, load_clip, render_clip, write_clip
from engine_core.data.synth.sentences import sentence_text
from engine_core.data.synth.speech import VoiceParams

__all__ = [
    "Clip", "CorpusOptions", "GalleryCharacter", "IdentityParams", "VoiceParams", "gallery_characters",
    "generate_corpus", "identity_params", "load_clip", "read_manifest", "render_clip", "render_portrait",
    "sentence_text", "write_clip", "write_gallery",
]
