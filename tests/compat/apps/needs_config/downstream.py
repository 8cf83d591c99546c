from patterns import Table

enriched = Table("enriched")
final = Table("final", "w")
final.append([{"url": r["url"]} for r in enriched.read()])
