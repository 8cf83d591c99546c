from patterns import Table

events = Table("events", "w")
events.append([{"kind": kind, "n": n} for kind, n in
               [("click", 1), ("click", 2), ("view", 3), ("view", 4), ("view", 5)]])
