"""Keep one row per user: upserts re-deliver changed rows to downstream streams."""

from patterns import State, Table

enriched = Table("messages_enriched")
stats = Table("user_stats", "w")
scratch = Table("scratch", "w")
state = State()

stats.init(unique_on=["user"])
seen = set()
stream = enriched.as_stream()
for record in stream:                          # iteration is consume_records()
    seen.add(record["user"])
    scratch.append({"user": record["user"], "words": record["words"]})
    if len(seen) == 2:
        stream.checkpoint()                    # commit what is done so far

if seen:
    totals = enriched.read_sql(
        f"select user, count(*) as messages, sum(words) as words, max(sent_at) as last_sent "
        f"from {enriched} where user in ({', '.join(repr(u) for u in sorted(seen))}) "
        f"group by user order by user"
    )
    stats.upsert(totals)
scratch.truncate()                             # scratch only lives within a run
print(f"stats for {len(seen)} users; user_stats has {stats.record_count} rows")
print("columns:", [c["name"] for c in stats.schema["columns"]] if stats.exists else [])
state.set({"users": sorted(seen), "runs": state.get_value("runs", 0) + 1})
