from patterns import Parameter, Table

token = Parameter("token", type=str)
numbers = Table("numbers")
authed = Table("authed", "w")
authed.append([{"n": r["n"], "token_length": len(token)} for r in numbers.read()])
