"""Agents: the :class:`Agent` base class and function agents made by ``@rt.agent``."""

from .base import Agent, AgentHandler, FunctionAgent
from .data import DataProcessingAgent

__all__ = ["Agent", "AgentHandler", "DataProcessingAgent", "FunctionAgent"]
