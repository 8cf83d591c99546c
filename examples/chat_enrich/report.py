"""Rebuild the daily report from user stats; audit the stream API on the way."""

import datetime as dt

from patterns import Parameter, State, Table

stats = Table("user_stats")
report = Table("daily_report", "w")
report_date = Parameter("report_date", type=dt.date, default="2024-01-01")
state = State()

# Streams: rewind to recount everything, seek past a value, roll back a trial read.
# rollback() returns the whole run to its last checkpoint (writes and state included),
# so it comes before this run's writes.
stream = stats.as_stream(order_by="user")
stream.rewind()
everyone = [r["user"] for r in stream.consume_records()]
stream.seek("b")                               # users strictly after "b"
after_b = [r["user"] for r in stream]
stream.rewind()
first = next(iter(stream.consume_records()), None)
stream.rollback()                              # back to the last checkpoint: nothing consumed
print(f"{len(everyone)} users, after 'b': {after_b}, first: {first['user'] if first else None}, "
      f"ordered by {stream.order_by_field}")

frame = stats.read_dataframe()
if len(frame):
    frame["report_date"] = report_date.isoformat()
    frame["share"] = frame["words"] / frame["words"].sum()
    report.replace(frame)                      # a new version with just these rows
else:
    report.reset()                             # a new, empty version
report.write([], replace=False)                # the older name of append; empty is a no-op
if state.get_value("reports", 0) > 100:
    state.reset()
state.set_value("reports", state.get_value("reports", 0) + 1)
print(f"report for {report_date}: {len(frame)} rows")
