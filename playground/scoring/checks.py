"""The built-in checks, listed once (third-party ones come through the `playground.checks` entry point: see
playground/plugins.py)."""

from .audio import Clipping, Loudness, Silence
from .image import Hue
from .models import ClapScore, ClipScore, PickScore
from .reference import AudioMatch, ImageMatch
from .record import Latency, RealtimeFactor, Tokens, TokensPerSecond
from .text import (Contains, Equals, JsonSchema, JsonValid, Length, LLMJudge, NotContains, ReadingLevel, Regex,
                   Similarity, StartsWith)

BUILTIN_CHECKS = (Contains, NotContains, StartsWith, Equals, Regex, JsonValid, JsonSchema, Length, ReadingLevel,
                  Similarity, LLMJudge, ClipScore, PickScore, ClapScore, Hue, ImageMatch, Loudness, Clipping, Silence,
                  AudioMatch, Latency, Tokens, TokensPerSecond, RealtimeFactor)
