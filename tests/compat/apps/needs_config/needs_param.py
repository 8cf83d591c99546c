from patterns import Parameter, Table

api_base = Parameter("api_base", type=str)
numbers = Table("numbers")
enriched = Table("enriched", "w")
enriched.append([{**r, "url": f"{api_base}/{r['n']}"} for r in numbers.read()])
