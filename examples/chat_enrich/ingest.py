"""Fetch chat messages from the (pretend) demo API, a batch per run."""

import datetime as dt
import logging
import random

import pandas as pd
import pyarrow as pa

from patterns import Connection, Parameter, State, Table

messages = Table("messages", "w", description="Raw chat messages")
batch_size = Parameter("batch_size", type=int, default=10, description="Messages per run")
total = Parameter("total", type=int, default=30)
channels = Parameter("channels", type=list, default=["general"])
since = Parameter("since", type=dt.datetime, default="2024-01-01")
api = Parameter("api", type=Connection("demo_api"))
token = Parameter("token", type=str)
seed = Parameter("seed", type=float, default=7.0)
verbose = Parameter("verbose", type=bool, default=False)

state = State()
messages.init(schema_hints={"user_id": "Integer", "sent_at": "DateTime"},
              add_created="ingested_at", add_monotonic_id="patterns_id", auto_indexes=True)

done = state.get_value("count", 0)
rng = random.Random(seed + done)
users = ["ada", "grace", "linus", "barbara"]
words = ["data", "pipelines", "stream", "exactly", "once", "tables", "nodes", "state", "graph", "fast", "local"]


def message(n: int) -> dict:
    return {
        "id": n,
        "user": users[n % len(users)],
        "user_id": n % len(users),
        "channel": channels[n % len(channels)],
        "text": " ".join(rng.choice(words) for _ in range(rng.randint(3, 12))),
        "sent_at": since + dt.timedelta(minutes=7 * n),
        "meta": {"source": api["base_url"], "client": {"version": 2}},
    }


if done < total:
    todo = list(range(done, min(done + batch_size, total)))
    first, second, third, rest = todo[:1], todo[1:5], todo[5:8], todo[8:]
    for n in first:
        messages.append(message(n))                                    # one dict
    messages.append([message(n) for n in second])                      # a list of dicts
    if third:
        messages.append(pd.DataFrame([message(n) for n in third]))     # a DataFrame
    if rest:
        messages.append(pa.Table.from_pylist([message(n) for n in rest]))  # an Arrow table
    messages.flush()
    state.set_value("count", done + len(todo))
    state.set_value("last_fetch", dt.datetime.now(dt.UTC))
    print(f"fetched {len(todo)} messages with token {token}")
    logging.getLogger("ingest").info("%d of %d messages fetched", done + len(todo), total)
    if done + len(todo) < total and state.should_continue():
        state.request_new_run(trigger_downstream=True)
else:
    last = state.get_datetime("last_fetch")
    print(f"all {total} messages fetched (last fetch {last:%Y-%m-%d %H:%M})")
if verbose:
    print("state:", state.get())
