select count(*) as n from {{ Table("deduped") }}
