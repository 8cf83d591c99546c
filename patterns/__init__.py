"""Patterns: the node API.

```python
from patterns import Table, State, Parameter
```
"""

from __future__ import annotations

from patterns.sdk.parameter import Connection, Parameter
from patterns.sdk.respond import respond_to_request
from patterns.sdk.state import State
from patterns.sdk.stream import Stream
from patterns.sdk.table import Table

__all__ = ["Connection", "Parameter", "State", "Stream", "Table", "respond_to_request"]
__version__ = "0.1.0"
