from patterns import Table

customers = Table("customers", "w")
customers.append({"id": 99, "name": "Mallory"})
