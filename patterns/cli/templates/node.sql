-- __FILE__: a SQL node. Each run, its SELECT makes a new version of its output table
-- (graph.yml maps the port output_table to the store __TABLE__). Written in Postgres' dialect
-- (settings.sql_dialect; a first line `-- dialect: duckdb` switches this file to DuckDB's).
-- Read a table by putting Table("name") in double braces; parameters are bound, not pasted:
select {{ Parameter("greeting", type=str, default="hello") }} as greeting,
       now()::date as day
