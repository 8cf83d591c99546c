"""Stream new messages in send order and enrich them."""

from patterns import Parameter, State, Table

messages = Table("messages")
enriched = Table("messages_enriched", "w")
preview_chars = Parameter("preview_chars", type=int, default=100)
state = State()

stream = messages.as_stream(order_by="sent_at")
with stream.consume_with_rollback() as records:
    for record in records:
        record["preview"] = record["text"][:preview_chars]
        record["words"] = len(record["text"].split())
        enriched.append(record)
        if not state.should_continue():
            state.request_new_run()
            break
state.set_value("enriched_total", state.get_value("enriched_total", 0) + enriched.record_count)
print(f"{enriched.record_count} enriched rows in {enriched.sql_name}")
