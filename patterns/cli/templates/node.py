"""A Patterns node: any Python script that declares its tables with Table().

Run it with `patterns run` from the app folder (or `patterns run APP --node __FILE__`), then
look at what it wrote with `patterns table show APP __TABLE__`.
"""

import datetime as dt

from patterns import Table

# Tables are declared with literal names. Mode "w" writes; reading is the default:
#   orders = Table("orders")
#   for record in orders.as_stream(order_by="created_at").consume_records():
#       ...                          # each record is delivered exactly once across runs
output = Table("__TABLE__", "w")

# Parameters get their value from graph.yml (parameter_values), `--param NAME=VALUE`,
# or the default:
#   from patterns import Parameter
#   greeting = Parameter("greeting", type=str, default="hello")
#
# State keeps small values between runs of this node:
#   from patterns import State
#   state = State()
#   runs = state.get_value("runs", 0) + 1
#   state.set_value("runs", runs)

output.append({"message": "hello from __FILE__", "created_at": dt.datetime.now(dt.UTC)})
print("appended 1 record to __TABLE__")
