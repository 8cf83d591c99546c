select count(*) as orders, sum(amount) as total
from {{ Table("clean_orders") }}
