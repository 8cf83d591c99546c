"""Import every record of a JSON API into ``records`` (a new version on each run)."""

import json

from patterns import Parameter, Table

from .paging import pages

url = Parameter("url", type=str, description="The API address (http or https).")
records_path = Parameter("records_path", type=str, default="",
                         description="Where the list of records is in each answer, dotted "
                                     "(data.items); empty: the answer is the list.")
paging = Parameter("paging", type=str, default="none",
                   description="none, page (page numbers from 1), offset, or next (a link).")
page_param = Parameter("page_param", type=str, default="page",
                       description="The query parameter of the page number or offset.")
page_size_param = Parameter("page_size_param", type=str, default="",
                            description="The query parameter of the page size, if any.")
page_size = Parameter("page_size", type=int, default=0,
                      description="Records per page (a shorter page is the last).")
next_path = Parameter("next_path", type=str, default="next",
                      description="Where the next page's link is in an answer (paging: next).")
max_pages = Parameter("max_pages", type=int, default=1000, description="At most this many pages.")
headers = Parameter("headers", type=str, default="{}",
                    description='Request headers as a JSON object ({"Authorization": "..."}).')
retries = Parameter("retries", type=int, default=4,
                    description="Attempts after the first for rate limits and server errors.")
backoff = Parameter("backoff_seconds", type=float, default=1.0,
                    description="The first wait before trying again (doubled each time).")
records = Table("records", "w")

if paging not in ("none", "page", "offset", "next"):
    raise ValueError(f"paging {paging!r} is not one of none, page, offset, next")
extra = json.loads(headers) if headers else {}
if not isinstance(extra, dict):
    raise ValueError("headers must be a JSON object such as {\"Authorization\": \"Bearer ...\"}")
rows = []
count = 0
for page in pages(url, records_path=records_path, paging=paging, page_param=page_param,
                  page_size_param=page_size_param, page_size=page_size, next_path=next_path,
                  max_pages=max_pages, headers={str(k): str(v) for k, v in extra.items()},
                  retries=retries, backoff=backoff):
    rows += [r if isinstance(r, dict) else {"value": r} for r in page]
    count += 1
records.replace(rows)
print(f"imported {len(rows)} record(s) from {count} page(s) of {url}")
