from patterns import State, Table

raw = Table("raw_orders")
deduped = Table("deduped", "w")
state = State()
seen = set(state.get_value("seen", []))
for record in raw.as_stream().consume_records():
    if record["order_id"] not in seen:
        seen.add(record["order_id"])
        deduped.append(record)
state.set_value("seen", sorted(seen))
