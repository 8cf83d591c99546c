-- Type '{{' to use Tables and Parameters
/* Totals per kind, as the original Studio saved it.
   Braces in comments are text: {{ }}, {% if %} and {# #} mean nothing here. */
select kind,
       count(*) as n,
       '{{ not a template }}' as note,
       'it''s {% raw text' as quoted
from {{ Table("events") }}
where n >= {{ Parameter("min_n", type=int, default=2) }}  -- rows below '{{ min_n }}' are left out
group by kind
order by kind
