"""Agents: the :class:`Agent` base class and function agents made by ``@rt.agent``."""

from .base import Agent, AgentHandler, FunctionAgent

__all__ = ["Agent", "AgentHandler", "FunctionAgent"]
