"""Responders turn what the dialogue wants to say into words: scripted (default) or LLM."""

from ketai.responders.base import Draft, Responder, ResponderContext
from ketai.responders.scripted import ScriptedResponder

__all__ = ["Draft", "Responder", "ResponderContext", "ScriptedResponder"]
