from patterns import Table

greetings = Table("greetings", "w")
greetings.append({"text": "hello"})
