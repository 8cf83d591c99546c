from patterns import Table

customers = Table("customers")
products = Table("products")
report = Table("report", "w")

names = {c["id"]: c["name"] for c in customers.read()}
sql = f"select p.sku, p.price from {products} p where p.price > 5 order by p.sku"
for product in products.read_sql(sql):
    report.append({"sku": product["sku"], "price": product["price"],
                   "customers": len(names), "first": names[min(names)]})
