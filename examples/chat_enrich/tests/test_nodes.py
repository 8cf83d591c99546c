"""Unit tests of this app's nodes with patterns.testing: each runs the real node on a
throwaway store. Run them with `pytest examples/chat_enrich/tests`."""

import datetime as dt
from pathlib import Path

from patterns.testing import run_node

APP = Path(__file__).resolve().parents[1]


def message(n, text):
    return {"id": n, "user": "ada", "user_id": 0, "channel": "general", "text": text,
            "sent_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n),
            "meta": {"source": "test"}}


def test_enrich_adds_preview_and_word_count_in_send_order():
    result = run_node(APP, "enrich.py",
                      inputs={"messages": [message(2, "second message here"),
                                           message(1, "first one")]},
                      params={"preview_chars": 5})
    assert result.ok, result.traceback
    rows = result.outputs["messages_enriched"]
    assert [(r["id"], r["preview"], r["words"]) for r in rows] == [(1, "firs…", 2),
                                                                   (2, "seco…", 3)]
    assert rows[0]["meta"] == {"source": "test"}
    assert result.state["enriched_total"] == 2


def test_user_stats_upserts_one_row_per_user():
    enriched = [{**message(n, "a b c"), "preview": "a", "words": 3} for n in range(3)]
    result = run_node(APP, "user_stats.py", inputs={"messages_enriched": enriched},
                      state={"runs": 4})
    assert result.ok, result.traceback
    (ada,) = result.outputs["user_stats"]
    assert (ada["user"], ada["messages"], ada["words"]) == ("ada", 3, 9)
    assert result.outputs["scratch"] == []          # truncated at the end of the run
    assert result.state == {"users": ["ada"], "runs": 5}
    assert any("stats for 1 users" in line for line in result.logs)


def test_channel_daily_counts_messages_per_channel_and_day():
    enriched = [{**message(n, "a b c"), "channel": ["general", "help"][n % 2], "words": n}
                for n in range(5)]
    result = run_node(APP, "channel_daily.sql", inputs={"messages_enriched": enriched},
                      params={"channels": "gen%"})
    assert result.ok, result.error
    (row,) = result.outputs["channel_daily"]
    assert (row["channel"], row["day"], row["messages"], row["words"]) == (
        "general", dt.date(2024, 1, 1), 3, 6)
    assert (row["avg_words"], row["among_latest"], row["source"]) == (2.0, 3, "test")
