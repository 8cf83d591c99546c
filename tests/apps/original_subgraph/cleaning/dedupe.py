from patterns import Table

raw = Table("raw_orders")
deduped = Table("deduped", "w")
seen = set()
for record in raw.as_stream().consume_records():
    if record["order_id"] not in seen:
        seen.add(record["order_id"])
        deduped.append(record)
