"""Item 12: Postgres SQL as analysts write it, run by PostgreSQL itself and through our
translation to DuckDB (``read_sql`` in a node, the real engine and store) on the same data;
the results must be the same, column names included."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterator
from typing import Any

import pytest

from patterns import Table
from tests.conftest import AppRunner

ORDERS = [
    # id, customer, amount, status, created_at, shipped_on, meta
    (1, "ada", 120.5, "paid", dt.datetime(2024, 1, 3, 9, 15), dt.date(2024, 1, 5),
     {"channel": "web", "items": [1, 2, 3], "coupon": {"code": "NEW10", "pct": 10}}),
    (2, "bob", 80.0, "paid", dt.datetime(2024, 1, 17, 18, 40), dt.date(2024, 1, 20),
     {"channel": "app", "items": [4]}),
    (3, "ada", 42.25, "refunded", dt.datetime(2024, 2, 2, 11, 0), None,
     {"channel": "web", "items": []}),
    (4, "cyd", 300.0, "paid", dt.datetime(2024, 2, 29, 23, 59), dt.date(2024, 3, 2),
     {"channel": "store", "items": [5, 6], "coupon": {"code": "VIP", "pct": 25}}),
    (5, "bob", 15.75, "pending", dt.datetime(2024, 3, 10, 7, 5), None,
     {"channel": "app", "items": [7]}),
    (6, "dee", 99.99, "paid", dt.datetime(2024, 3, 31, 12, 30), dt.date(2024, 4, 3),
     {"channel": "web", "items": [8, 9]}),
    (7, "ada", 5.0, "paid", dt.datetime(2024, 4, 1, 0, 0), dt.date(2024, 4, 1),
     {"channel": "web", "items": [10]}),
    (8, "eve", None, "cancelled", dt.datetime(2024, 4, 15, 16, 20), None, {"channel": "app"}),
]
PEOPLE = [  # name, email, city, signed_up
    ("ada", "Ada.Lovelace@Example.com", "London", dt.date(2023, 12, 1)),
    ("bob", "bob@example.org", "Paris", dt.date(2024, 1, 10)),
    ("cyd", "cyd.smith@mail.example.com", "London", dt.date(2024, 2, 14)),
    ("dee", "  dee@example.com ", None, dt.date(2024, 3, 1)),
    ("eve", "eve@example.net", "Berlin", dt.date(2024, 4, 2)),
]
ORDER_COLS = ("id", "customer", "amount", "status", "created_at", "shipped_on", "meta")
PEOPLE_COLS = ("name", "email", "city", "signed_up")

CORPUS: list[str] = [
    # --- aggregates, FILTER, casts
    "select status, count(*), sum(amount) from orders group by status order by status",
    "select customer, count(*) filter (where status = 'paid') as paid, "
    "count(*) filter (where status <> 'paid') as other from orders group by 1 order by 1",
    "select count(distinct customer) as customers, round(avg(amount)::numeric, 2) as avg_amount "
    "from orders",
    # (a float as text differs: Postgres writes 80, DuckDB 80.0; see docs/compatibility.md)
    "select id, amount::int as whole, id::text as t, round(amount::numeric)::bigint as r from orders "
    "where amount is not null order by id",
    "select id, id::text || '-' || customer as code from orders order by id",
    "select '42'::int + 1 as n, '3.5'::float * 2 as f, 'true'::boolean as b",
    "select cast(created_at as date) as day, count(*) from orders group by 1 order by 1",
    "select sum(case when status = 'paid' then amount else 0 end) as paid_total from orders",
    "select customer, string_agg(status, ',' order by id) as statuses from orders "
    "group by customer order by customer",
    "select customer, array_agg(id order by id) as ids from orders group by 1 order by 1",
    "select 7 / 2 as int_div, 7 % 3 as modulo, 7.0 / 2 as num_div",
    "select coalesce(sum(amount) filter (where status = 'nothing'), 0) as none_total from orders",
    "select bool_or(status = 'refunded') as any_refund, bool_and(amount > 1) as all_big "
    "from orders",
    "select percentile_cont(0.5) within group (order by amount) as median from orders",
    "select min(created_at) as first, max(created_at) as last from orders",
    # --- window functions
    "select id, customer, row_number() over (partition by customer order by created_at) as n "
    "from orders order by id",
    "select id, sum(amount) over (order by id rows between unbounded preceding and current row) "
    "as running from orders order by id",
    "select id, rank() over (order by amount desc nulls last) as r, dense_rank() over "
    "(order by status) as d from orders order by id",
    "select id, lag(amount) over (order by id) as prev, lead(id, 2) over (order by id) as "
    "next2 from orders order by id",
    "select id, amount - avg(amount) over (partition by customer) as vs_avg from orders "
    "where amount is not null order by id",
    "select id, first_value(id) over w as first_id, last_value(id) over w as last_id from "
    "orders window w as (partition by customer order by id rows between unbounded preceding "
    "and unbounded following) order by id",
    "select id, ntile(3) over (order by id) as bucket from orders order by id",
    "select customer, id, count(*) over (partition by customer) as orders_by_customer "
    "from orders order by id",
    "select id, round((100.0 * amount / sum(amount) over ())::numeric, 2) as pct from orders "
    "where amount is not null order by id",
    "select * from (select id, customer, row_number() over (partition by customer order by "
    "amount desc) as rn from orders) ranked where rn = 1 order by customer",
    # --- dates, times, intervals
    "select date_trunc('month', created_at) as month, count(*) from orders group by 1 "
    "order by 1",
    "select id, date_trunc('week', created_at) as week from orders order by id",
    "select id, extract(dow from created_at) as dow, extract(hour from created_at) as hour "
    "from orders order by id",
    "select id, created_at + interval '1 day' as tomorrow, created_at - interval '2 hours' as "
    "earlier from orders order by id",
    "select id, shipped_on - created_at::date as days_to_ship from orders where shipped_on is "
    "not null order by id",
    "select id from orders where created_at >= '2024-02-01' and created_at < "
    "'2024-02-01'::date + interval '1 month' order by id",
    "select to_char(created_at, 'YYYY-MM') as ym, count(*) from orders group by 1 order by 1",
    "select id, date_part('month', created_at) as m from orders order by id",
    "select id, extract(epoch from (created_at - '2024-01-01'::timestamp)) as secs from "
    "orders order by id",
    "select id, age(shipped_on::timestamp, created_at) as waited from orders where shipped_on "
    "is not null order by id",
    "select date '2024-03-01' - date '2024-02-01' as days",
    "select make_date(2024, 2, 29) as leap, to_date('2024-05-06', 'YYYY-MM-DD') as d",
    "select id, created_at::date as day, created_at::time as at from orders order by id",
    # --- generate_series
    "select d::date as day from generate_series('2024-01-01'::timestamp, '2024-01-05', "
    "interval '1 day') as g(d) order by 1",
    "select n, n * n as sq from generate_series(1, 5) as n order by n",
    "select m::date as month, count(o.id) as orders from generate_series('2024-01-01'::date, "
    "'2024-05-01'::date, interval '1 month') as m left join orders o on date_trunc('month', "
    "o.created_at) = m group by m order by m",
    # --- DISTINCT ON, joins, CTEs, set operations
    "select distinct on (customer) customer, id, amount from orders order by customer, "
    "created_at desc",
    "select distinct on (status) status, id from orders order by status, amount desc nulls last",
    "with totals as (select customer, sum(amount) as total from orders group by customer) "
    "select p.city, sum(t.total) as total from totals t join people p on p.name = t.customer "
    "group by p.city order by p.city nulls first",
    "select p.name, count(o.id) as n from people p left join orders o on o.customer = p.name "
    "group by p.name having count(o.id) > 1 order by p.name",
    "select customer from orders where status = 'paid' intersect select name from people "
    "where city = 'London' order by 1",
    "select name from people except select customer from orders where status = 'paid' "
    "order by 1",
    "select id, (select count(*) from orders o2 where o2.customer = o.customer and o2.id < "
    "o.id) as earlier from orders o order by id",
    "select name from people p where exists (select 1 from orders o where o.customer = p.name "
    "and o.status = 'refunded')",
    "select id, case when amount >= 100 then 'big' when amount >= 50 then 'mid' else 'small' "
    "end as size from orders order by id",
    # --- string functions
    "select name, upper(name) as u, initcap(city) as c, length(email) as len from people "
    "order by name",
    "select name, split_part(email, '@', 2) as domain, lower(trim(email)) as clean from "
    "people order by name",
    "select name, substring(email from 1 for 3) as head, position('@' in email) as at from "
    "people order by name",
    "select name, replace(email, 'example', 'ex') as r, left(name, 2) as l, right(name, 1) as "
    "rt from people order by name",
    "select name, lpad(name, 6, '*') as lp, rpad(name, 5, '.') as rp, repeat(name, 2) as rr "
    "from people order by name",
    "select name, concat(name, '/', city) as c, concat_ws('-', name, city, 'x') as cw from "
    "people order by name",
    "select name from people where email ilike '%EXAMPLE.COM%' order by name",
    "select name, regexp_replace(email, '[aeiou]', '_', 'g') as masked from people order by "
    "name",
    "select name, email ~ '^[a-z]+@' as simple, email !~* 'org$' as not_org from people "
    "order by name",
    "select name, coalesce(city, 'unknown') as city, nullif(city, 'Paris') as not_paris from "
    "people order by name",
    "select format('%s%%', 42) as pct, format('%s is %s', name, city) as line from people "
    "order by name",
    "select name, reverse(name) as r, strpos(email, '.') as dot, btrim('  x  ') as b from "
    "people order by name",
    "select string_agg(distinct city, ', ' order by city) as cities from people",
    "select name, md5(name) as h from people order by name",
    "select name, starts_with(email, name) as sw, char_length(name) as n from people order "
    "by name",
    # --- JSON
    "select id, meta->>'channel' as channel, meta->'coupon'->>'code' as code from orders "
    "order by id",
    "select id, (meta->'coupon'->>'pct')::int as pct from orders where meta ? 'coupon' "
    "order by id",
    "select meta->>'channel' as channel, count(*) from orders group by 1 order by 1",
    "select id, jsonb_array_length(meta->'items') as n_items from orders where meta ? 'items' "
    "order by id",
    "select id, jsonb_build_object('id', id, 'who', customer) as doc from orders order by id",
    "select jsonb_build_array(1, 'two', null) as arr",
    "select id, meta #>> '{coupon,code}' as code from orders order by id",
    "select id, jsonb_typeof(meta->'items') as t from orders order by id",
    "select id, meta @> '{\"channel\": \"web\"}' as web from orders order by id",
    "select id, jsonb_extract_path_text(meta, 'coupon', 'code') as code from orders order by id",
    "select customer, jsonb_agg(id order by id) as ids from orders group by 1 order by 1",
    "select jsonb_object_agg(name, city) as cities from people where city is not null",
    "select id, to_jsonb(customer) as j from orders order by id",
    "select id, (meta->'items'->>0)::int as first_item from orders order by id",
    "select id, value::int as item from orders, jsonb_array_elements_text(meta->'items') "
    "order by id, item",
    "select key, count(*) from orders, jsonb_object_keys(meta) as key group by key order by key",
    "select id, jsonb_strip_nulls(jsonb_build_object('a', 1, 'b', null)) as s from orders "
    "where id = 1",
    "select id, meta->'items' as items from orders order by id",
    "select id, meta - 'items' as rest from orders where id < 3 order by id",
    "select id, jsonb_set(meta, '{channel}', '\"phone\"') as moved from orders where id = 2",
    "select id, meta ?| array['coupon', 'nothing'] as any_key from orders order by id",
    "select id, meta ?& array['channel', 'items'] as both from orders order by id",
    "select id, '{\"channel\": \"app\", \"items\": [4], \"x\": 1}' <@ meta as inside from "
    "orders where id = 2",
    "select key, value from orders, jsonb_each_text(meta) where id = 2 order by key",
    "select e.key, jsonb_typeof(e.value) as t from orders, jsonb_each(meta) e where id = 1 "
    "order by 1",
    "select jsonb_array_elements(meta->'items') as item from orders where id = 1",
    "select jsonb_object_keys(meta) from orders where id = 4 order by 1",
    "select id, jsonb_extract_path(meta, 'coupon') as coupon from orders order by id",
    "select id, jsonb_set(meta, '{coupon,pct}', '50') -> 'coupon' as c from orders where id = 4",
    "select format('%s-%s', 'a', null) as s, format('%L and %L', 'it''s', null) as l, "
    "format('%I', 'Order Id') as i, format('%2$s %1$s', 'world', 'hello') as p",
    "select id, format('%s: %s%%', customer, round(coalesce(amount, 0)::numeric)::int) as label from orders "
    "order by id",
    "select jsonb_agg(distinct customer order by customer) as names from orders",
    "select id, json_build_object('n', id) ->> 'n' as n, json_array_length('[1,2]') as two "
    "from orders where id = 1",
]


@pytest.fixture(scope="module")
def engine_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppRunner]:
    from tests.conftest import write_app

    root = write_app(tmp_path_factory.mktemp("corpus") / "app", {
        "load.py": 'from patterns import Table\nTable("orders", "w")\nTable("people", "w")\n',
        "query.py": 'from patterns import Table\nTable("orders")\nTable("people")\n',
    }, ["orders", "people"])
    app = AppRunner(root)
    with app.sdk("load"):
        Table("orders", "w").append([dict(zip(ORDER_COLS, row, strict=True))
                                     for row in ORDERS])
        Table("people", "w").append([dict(zip(PEOPLE_COLS, row, strict=True))
                                     for row in PEOPLE])
    yield app
    app.close()


@pytest.fixture(scope="module")
def postgres(postgres_server: str) -> Iterator[Any]:
    import psycopg
    from psycopg.types.json import Jsonb

    name = "t_corpus"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as con:
        # the types our store keeps these columns as
        con.execute("create table orders (id bigint, customer text, amount double precision, "
                    "status text, created_at timestamp, shipped_on date, meta jsonb)")
        con.execute("create table people (name text, email text, city text, signed_up date)")
        with con.cursor() as cur:
            cur.executemany("insert into orders values (%s, %s, %s, %s, %s, %s, %s)",
                            [(*row[:6], Jsonb(row[6])) for row in ORDERS])
            cur.executemany("insert into people values (%s, %s, %s, %s)", PEOPLE)
        yield con


def normal(value: Any) -> Any:
    """Values as both databases' Python clients hand them out, made comparable."""
    if hasattr(value, "months") and hasattr(value, "nanoseconds"):  # an Arrow interval
        assert value.months == 0, "intervals of months compare only as timedeltas"
        return dt.timedelta(days=value.days, microseconds=value.nanoseconds // 1000)
    if isinstance(value, (decimal.Decimal, float)):
        return round(float(value), 6)
    if isinstance(value, str) and value[:1] in "[{" and value[-1:] in "]}":
        try:
            return normal(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: normal(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


@pytest.mark.parametrize("sql", CORPUS, ids=[f"q{i:02d}" for i in range(len(CORPUS))])
def test_postgres_and_the_translation_agree(sql: str, postgres: Any,
                                            engine_app: AppRunner) -> None:
    cur = postgres.execute(sql)
    names = [c.name for c in cur.description or []]
    expected = [normal(dict(zip(names, row, strict=True))) for row in cur.fetchall()]
    with engine_app.sdk("query"):
        got = [normal(r) for r in Table("orders").read_sql(sql)]
    assert got == expected


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 60



def test_a_sql_node_of_the_original_with_format_and_jsonb_runs(
        original_app: Any) -> None:
    app = original_app({"graph.yml": """
        title: Labels
        functions:
          - node_file: load.py
          - node_file: labels.sql
            outputs:
              output_table: labels
        stores:
          - table: raw
          - table: labels
    """, "load.py": """
        from patterns import Table
        Table("raw", "w").append([{"id": 1, "pct": 12, "items": [1, 2]},
                                  {"id": 2, "pct": 7, "items": []}])
    """, "labels.sql": """
        select id,
               format('%s%%', pct) as label,
               jsonb_build_object('id', id, 'n', jsonb_array_length(items)) as doc,
               items ? 'x' as has_x
        from {{ Table("raw") }}
        order by id
    """})
    result = app.run()
    assert [r.status for r in result.runs] == ["succeeded", "succeeded"], \
        [r.error for r in result.runs]
    rows = app.rows("labels", order="id")
    assert [(r["label"], json.loads(r["doc"]), r["has_x"]) for r in rows] == [
        ("12%", {"id": 1, "n": 2}, False), ("7%", {"id": 2, "n": 0}, False)]
