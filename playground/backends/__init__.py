"""Model backends: one module per modality over transformers / diffusers, plus presets and the warm-model cache.

Only light modules are imported here; the torch-backed ones load when a model is first needed.
"""

from .base import MODALITIES, Backend, GenerationRequest, InvalidInput, Output, Param
from .catalog import PRESETS, Catalog, Preset

__all__ = ["MODALITIES", "PRESETS", "Backend", "Catalog", "GenerationRequest", "InvalidInput", "Output", "Param",
           "Preset"]
