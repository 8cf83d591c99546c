-- Messages per channel and day. A SQL node in Postgres' dialect (the app's default
-- settings.sql_dialect), as existing Patterns apps write it; Patterns translates it for
-- the DuckDB store. Each run makes a new version of its output table (graph.yml maps the
-- port output_table to the store channel_daily).
with per_message as (
    select channel,
           date_trunc('day', sent_at)::date as day,
           words,
           meta->>'source' as source,
           row_number() over (partition by channel order by sent_at desc) as recency
    from {{ Table("messages_enriched") }}
    where sent_at >= {{ Parameter("since", type="datetime", default="2024-01-01") }}
      and channel ilike {{ Parameter("channels", type=str, default="%") }}
)
select channel,
       day,
       count(*) as messages,
       sum(words)::int as words,
       round(avg(words)::numeric, 1) as avg_words,
       count(*) filter (where recency <= 3) as among_latest,
       min(source) as source
from per_message
group by channel, day
order by day, channel
