"""Stream new messages in send order and enrich them."""

from patterns import Parameter, State, Table

from .lib.text import preview, word_count  # shared code: the app folder is a package

messages = Table("messages")
enriched = Table("messages_enriched", "w")
preview_chars = Parameter("preview_chars", type=int, default=100)
state = State()

stream = messages.as_stream(order_by="sent_at")
with stream.consume_with_rollback() as records:
    for record in records:
        record["preview"] = preview(record["text"], preview_chars)
        record["words"] = word_count(record["text"])
        enriched.append(record)
        if not state.should_continue():   # near this node's time limit (graph.yml):
            state.request_new_run()       # commit what is done, carry on in a new run
            break
state.set_value("enriched_total", state.get_value("enriched_total", 0) + enriched.record_count)
print(f"{enriched.record_count} enriched rows in {enriched.sql_name}")
