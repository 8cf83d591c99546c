-- Type '{{' to use Tables and Parameters
select c.name, count(v.id) as visits
from {{ Table("customers") }} c
left join {{ Table("visits") }} v on v.customer_id = c.id
group by c.name
order by c.name
