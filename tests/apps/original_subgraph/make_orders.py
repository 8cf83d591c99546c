from patterns import Table

orders = Table("orders", "w")
orders.write([
    {"order_id": 1, "customer": "ada", "amount": 10},
    {"order_id": 1, "customer": "ada", "amount": 10},
    {"order_id": 2, "customer": "bob", "amount": 3},
    {"order_id": 3, "customer": "cy", "amount": 7.5},
])
