"""Testing aids: a scripted OpenAI-compatible server and an in-process scripted model.

```python
from swarm_runtime.testing import ScriptedServer, ScriptedModel, reply, tool_call, error, hang

with ScriptedServer(tool_call("lookup", {"id": 7}), reply("done")) as server:
    client = Swarm(server.sync_client())            # the real openai client, over HTTP
    client.run(agent, [{"role": "user", "content": "hi"}])
    assert len(server.requests) == 2

Swarm(client=ScriptedModel(reply("hi")))             # no HTTP, for fast unit tests
```
"""

from ._model import ScriptedModel
from ._script import (
    Reply,
    ReplySource,
    Script,
    ScriptedRequest,
    error,
    hang,
    reply,
    tool_call,
    tool_calls,
)
from ._server import ScriptedServer

__all__ = [
    "Reply",
    "ReplySource",
    "Script",
    "ScriptedModel",
    "ScriptedRequest",
    "ScriptedServer",
    "error",
    "hang",
    "reply",
    "tool_call",
    "tool_calls",
]
