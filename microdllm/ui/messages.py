"""What the app tells a visitor: toasts (gr.Warning, gr.Info, logged too) and the notice box."""
from __future__ import annotations

import html
import logging

import gradio as gr

log = logging.getLogger("microdllm.app")


def warn(message: str) -> None:
    log.warning(message)
    gr.Warning(html.escape(message, quote=False))


def info(message: str) -> None:
    log.info(message)
    gr.Info(html.escape(message, quote=False))


def tell(messages: list[tuple[str, str]]) -> None:
    """Show microdllm.inputs' messages: ("warning" | "info", text) each."""
    for level, message in messages:
        (warn if level == "warning" else info)(message)


def notice_md(notice: str | None):
    """The notice box under the title: a model that could not be loaded (hidden when there is none)."""
    return gr.Markdown(f"⚠️ **{html.escape(notice, quote=False)}**" if notice else "", visible=bool(notice))
