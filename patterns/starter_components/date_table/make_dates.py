"""Write the table of days from start_date to end_date (both included)."""

import datetime as dt

from patterns import Parameter, Table

start = Parameter("start_date", type=dt.date, default="2020-01-01",
                  description="The first day of the table.")
end = Parameter("end_date", type=str, default="",
                description="The last day (ISO date); empty: today.")
dates = Table("dates", "w")

last = dt.date.fromisoformat(end) if end else dt.date.today()
if last < start:
    raise ValueError(f"end_date {last} is before start_date {start}: give an end_date on or "
                     f"after the start_date")
rows = []
day = start
while day <= last:
    rows.append({"date": day, "year": day.year, "quarter": (day.month - 1) // 3 + 1,
                 "month": day.month, "day": day.day, "weekday": day.isoweekday(),
                 "day_name": day.strftime("%A"), "iso_week": day.isocalendar()[1],
                 "is_weekend": day.isoweekday() >= 6})
    day += dt.timedelta(days=1)
dates.replace(rows)
