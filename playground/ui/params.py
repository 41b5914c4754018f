"""Option controls built from the engines' own option models (registry), bounded by the server limits."""

from __future__ import annotations

import typing

import gradio as gr

from ..registry import engines_for, option_specs

_STEPS = {"width": 64, "height": 64, "temperature": 0.05, "top_p": 0.01, "repetition_penalty": 0.05,
          "guidance_scale": 0.5, "duration_s": 0.5}
_LABELS = {"max_new_tokens": "Max new tokens", "top_p": "Top-p", "top_k": "Top-k", "do_sample": "Sample",
           "num_inference_steps": "Steps", "guidance_scale": "Guidance scale", "duration_s": "Duration (s)",
           "repetition_penalty": "Repetition penalty", "completions": "Legacy completions (remote servers)"}


def param_controls(modality: str, settings, elem_prefix: str) -> dict[str, gr.components.Component]:
    """One control per option of the modality's engines; the sliders only help, the server checks every value."""
    controls = {}
    for engine in engines_for(modality):
        for spec in option_specs(engine.options, settings):
            if spec.name in controls:
                continue
            label = _LABELS.get(spec.name, spec.name.replace("_", " ").capitalize())
            elem_id = f"{elem_prefix}-{spec.name.replace('_', '-')}"
            if spec.kind is bool:
                controls[spec.name] = gr.Checkbox(spec.default, label=label, info=spec.help, elem_id=elem_id)
                continue
            if typing.get_origin(spec.kind) is typing.Literal:      # a choice among names (precision, mode)
                controls[spec.name] = gr.Dropdown(list(typing.get_args(spec.kind)), value=spec.default, label=label,
                                                  info=spec.help, elem_id=elem_id)
                continue
            step = _STEPS.get(spec.name, spec.multiple_of or (1 if spec.kind is int else 0.1))
            if spec.default is None:        # unset means the model's own value: an empty box, not a slider
                controls[spec.name] = gr.Number(None, minimum=spec.low, maximum=spec.high, step=step, label=label,
                                                info=spec.help, placeholder="model default", elem_id=elem_id)
                continue
            controls[spec.name] = gr.Slider(spec.low, spec.high, value=spec.default, step=step, label=label,
                                            info=spec.help, elem_id=elem_id)
    return controls
