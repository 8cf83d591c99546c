from patterns import Table

numbers = Table("numbers", "w")
numbers.append([{"n": n} for n in range(3)])
