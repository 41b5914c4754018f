"""The strict request layer: every request the app takes (the UI, the API, the CLI and imports) is validated here,
against the limits in the settings, and refused in one wording. See base.py for what strict means."""

from .base import (Count, Id, InvalidInput, ModelId, Name, RequestError, Strict, check, check_value, explain, items,
                   shown, storable, text, whole)
from .checks import CheckArgs, CheckText, check_declaration, describe_arguments, takes_text
from .comparison import ComparisonRequest, Modality, Seed
from .improve import ImproveRequest, SaveWinnerRequest, SearchRef
from .lookups import (ComparisonPage, ComparisonRef, ExportFormat, ExportRequest, HistoryQuery, ImportFile,
                      TemplateFilter, TemplateName, TemplateText)
from .votes import CHOICES, Rating, VoteCastRequest, VotePairRequest, Winner

__all__ = ["CHOICES", "CheckArgs", "CheckText", "ComparisonPage", "ComparisonRef", "ComparisonRequest", "Count",
           "ExportFormat", "ExportRequest", "HistoryQuery", "Id", "ImportFile", "ImproveRequest", "InvalidInput", "Modality", "ModelId",
           "Name", "Rating", "RequestError", "SaveWinnerRequest", "SearchRef", "Seed", "Strict", "TemplateFilter", "TemplateName", "TemplateText",
           "VoteCastRequest", "VotePairRequest", "Winner", "check", "check_declaration", "check_value",
           "describe_arguments", "explain", "items", "shown", "storable", "takes_text", "text", "whole"]
