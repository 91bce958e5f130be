"""LLM agents with OpenAI Swarm's surface, durable when given a store.

```python
from swarm_runtime.llm import Agent, Result, Response, Swarm

def transfer_to_refunds():
    return refunds                                   # a handoff

triage = Agent(name="Triage", instructions="...", functions=[transfer_to_refunds])
client = Swarm(store="file://runs")                  # None: not durable, like Swarm
response = client.run(triage, [{"role": "user", "content": "I want my money back"}])
response = await client.arun(triage, messages, run_id=response.run_id)  # resume / replay
```

``openai`` is the optional extra ``[llm]``; the types import without it.
"""

from ..errors import JournalMismatchError, LLMError, ModelCallError
from ._swarm import Swarm
from ._tools import compile_tool
from .hosted import LLMAgent
from .journal import MemoryStepJournal, RunJournal, StepJournal, open_step_journal
from .limits import RateLimit
from .metrics import LLMMetrics
from .model import ChatModel, OpenAIChatModel
from .types import Agent, AgentFunction, Response, Result, Usage

__all__ = [
    "Agent",
    "AgentFunction",
    "ChatModel",
    "JournalMismatchError",
    "LLMAgent",
    "LLMError",
    "LLMMetrics",
    "MemoryStepJournal",
    "ModelCallError",
    "OpenAIChatModel",
    "RateLimit",
    "Response",
    "Result",
    "RunJournal",
    "StepJournal",
    "Swarm",
    "Usage",
    "compile_tool",
    "open_step_journal",
]
