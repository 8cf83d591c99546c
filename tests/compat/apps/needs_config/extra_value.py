from patterns import Table

numbers = Table("numbers")
extra = Table("extra", "w")
extra.append([{"n": r["n"] * 10} for r in numbers.read()])
