select count(*) as customers, count(*) filter (where plan = 'pro') as pro
from {{ Table("customers") }}
