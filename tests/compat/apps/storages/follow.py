from patterns import Table

visits = Table("visits")
new_visits = Table("new_visits", "w")
for visit in visits.as_stream(order_by="id").consume_records():
    new_visits.append({"visit": visit["id"], "customer": visit["customer_id"]})
