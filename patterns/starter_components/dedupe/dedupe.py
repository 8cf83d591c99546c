"""Upsert each new record of ``records`` into ``deduped`` by ``key``: the latest wins."""

from patterns import Parameter, Table

key = Parameter("key", type=str, description="The key field, or several joined by commas.")
records = Table("records")
deduped = Table("deduped", "w")

fields = [name.strip() for name in key.split(",") if name.strip()]
if not fields:
    raise ValueError("parameter key is empty: name the field(s) that identify a record")
deduped.init(unique_on=fields)
batch: dict[tuple[str, ...], dict[str, object]] = {}  # key -> record: within a batch too, the latest wins
for record in records.as_stream().consume_records():
    missing = [f for f in fields if f not in record]
    if missing:
        raise KeyError(f"record {record} has no field {missing[0]!r} of the key {key!r}")
    record.pop("patterns_id", None)
    batch[tuple(str(record[f]) for f in fields)] = record
    if len(batch) >= 1000:
        deduped.upsert(list(batch.values()))
        batch = {}
deduped.upsert(list(batch.values()))
