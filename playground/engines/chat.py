"""The exact text a local text model reads: its tokenizer's chat template around the cell's messages.

A chat template may add text of its own. Qwen2.5's and SmolLM2's insert a default system prompt ("You are Qwen,
created by Alibaba Cloud...") whenever the messages have none; an explicit system message, even an empty one,
replaces it. So a cell's `system` is sent whenever it is set, "" included, and only None means "no system message".

`preview` gives the rendered-prompt preview the same text the engine will feed the model, before anything runs.
"""

from __future__ import annotations


def messages(prompt: str, system: str | None) -> list[dict]:
    chat = [{"role": "user", "content": prompt}]
    if system is not None:          # "" too: an empty system message switches a template's default one off
        chat.insert(0, {"role": "system", "content": system})
    return chat


def has_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(tokenizer, prompt: str, system: str | None) -> str:
    """The tokenizer's chat template with the generation prompt when it has one, else plain completion text."""
    if has_template(tokenizer):
        return tokenizer.apply_chat_template(messages(prompt, system), tokenize=False, add_generation_prompt=True)
    return f"{system}\n\n{prompt}" if system else prompt


def preview(catalog, model_id: str, prompt: str, system: str | None = None) -> str | None:
    """The text `model_id` will see for this prompt and system message: what a local model's engine feeds it; None
    for a remote model, whose server applies its own template. A warm model's tokenizer is used as it is; otherwise
    only the tokenizer is loaded (no weights)."""
    resolved = catalog.resolve("text", model_id)
    if resolved.engine.remote:
        return None
    warm = catalog.find_loaded("text", resolved.model_id, resolved.revision)
    tokenizer = getattr(warm, "tokenizer", None)
    if tokenizer is None:
        from pathlib import Path

        from transformers import AutoTokenizer

        revision = {"revision": resolved.revision} if resolved.revision and not Path(resolved.source).exists() else {}
        tokenizer = AutoTokenizer.from_pretrained(resolved.source, **revision)
    return format_prompt(tokenizer, prompt, system)
