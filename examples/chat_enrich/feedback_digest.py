"""Every hour (a cron trigger), fold new feedback from the webhook into per-user ratings."""

from patterns import Table

feedback = Table("feedback", required=False)     # filled by the `webhook: feedback` function
summary = Table("feedback_summary", "w")

summary.init(unique_on=["user"])
totals: dict[str, dict] = {}
for item in feedback.as_stream().consume_records():
    user = str(item.get("user") or "anonymous")
    entry = totals.setdefault(user, {"user": user, "ratings": 0, "rating_sum": 0})
    entry["ratings"] += 1
    entry["rating_sum"] += int(item.get("rating") or 0)

if totals:
    known = {r["user"]: r for r in summary.read()} if summary.exists else {}
    for user, entry in totals.items():
        before = known.get(user, {"ratings": 0, "rating_sum": 0})
        ratings = before["ratings"] + entry["ratings"]
        rating_sum = before["rating_sum"] + entry["rating_sum"]
        summary.upsert({"user": user, "ratings": ratings, "rating_sum": rating_sum,
                        "average": round(rating_sum / ratings, 2)})
print(f"feedback from {len(totals)} user(s) folded in")
