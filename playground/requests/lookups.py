"""What reads the log asks for: a comparison page, the History filters, an export, a template by name."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from .base import Count, Id, ModelId, Name, Strict, text, whole
from .comparison import _modality

ModalityOrAll = Annotated[str, AfterValidator(lambda value: value and _modality(value))]   # empty: every modality

ExportFormat = Literal["jsonl", "csv", "zip"]
Query = text("max_query_chars")
PageSize = whole(1, "max_page_runs")
MinStars = whole(0, 5)
NameOrAll = text("max_name_chars")            # empty: every template
ModelOrAll = text("max_model_id_chars")       # empty: every model
TemplateSource = text("max_template_chars", empty=False)
FilePath = text(4096, empty=False)


class ComparisonPage(Strict):
    comparison_id: Id
    offset: Count = 0
    limit: PageSize = 1000


class HistoryQuery(Strict):
    """Logged runs, newest first, filtered; empty text means no filter."""

    modality: ModalityOrAll = ""
    template: NameOrAll = ""
    model: ModelOrAll = ""
    query: Query = ""
    min_stars: MinStars = 0
    limit: PageSize = 50
    offset: Count = 0


class ComparisonRef(Strict):
    comparison_id: Id


class ExportRequest(Strict):
    comparison_id: Id
    fmt: ExportFormat = "jsonl"


class TemplateName(Strict):
    template: Name


class TemplateFilter(Strict):
    """A template name, or empty for all."""

    template: NameOrAll = ""
    modality: ModalityOrAll = ""


class TemplateText(Strict):
    text: TemplateSource = Field(description="a template file's text")
    overwrite: bool = False


class ImportFile(Strict):
    file: FilePath = Field(description="an export file (.jsonl or .zip)")


class ModelFilter(Strict):
    model: ModelId
