from patterns import Parameter, Table

min_amount = Parameter("min_amount", type=float, default=0)
deduped = Table("deduped")
clean = Table("clean_orders", "w")
for record in deduped.as_stream().consume_records():
    if record["amount"] >= min_amount:
        clean.append(record)
