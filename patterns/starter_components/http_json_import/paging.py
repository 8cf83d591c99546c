"""Fetch the pages of a JSON API with retries (standard library only)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)


def get_json(url: str, headers: Mapping[str, str], retries: int, backoff: float) -> Any:
    """GET ``url`` as JSON; rate limits, server errors and dropped connections are tried
    again ``retries`` times, waiting ``backoff`` seconds doubled each time (or what a
    ``Retry-After`` header says)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    for attempt in range(retries + 1):
        wait = backoff * 2 ** attempt
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read().decode("utf-8") or "null")
        except urllib.error.HTTPError as error:
            if error.code not in RETRY_STATUS or attempt == retries:
                body = error.read()[:300].decode("utf-8", "replace")
                raise RuntimeError(f"GET {url} answered {error.code} {error.reason}: {body}"
                                   ) from None
            after = error.headers.get("Retry-After", "")
            wait = float(after) if after.replace(".", "", 1).isdigit() else wait
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            if attempt == retries:
                raise RuntimeError(f"GET {url} failed after {retries + 1} attempt(s): "
                                   f"{getattr(error, 'reason', error)}") from None
        print(f"GET {url}: attempt {attempt + 1} failed; trying again in {wait:g}s")
        time.sleep(wait)
    raise AssertionError("unreachable")


def dig(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` ("data.items") of a JSON document ("" : itself)."""
    for part in [p for p in path.split(".") if p]:
        if isinstance(document, Mapping):
            document = document.get(part)
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return None
    return document


def with_query(url: str, values: Mapping[str, Any]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update({k: str(v) for k, v in values.items()})
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def pages(url: str, *, records_path: str, paging: str, page_param: str, page_size_param: str,
          page_size: int, next_path: str, max_pages: int, headers: Mapping[str, str],
          retries: int, backoff: float) -> Iterator[list[Any]]:
    """The records of each page. ``paging``: ``none`` (one request), ``page`` (page numbers
    from 1), ``offset`` (record offsets from 0) or ``next`` (follow the link at
    ``next_path``). Paging stops at an empty or short page, a missing next link, or
    ``max_pages``."""
    number, offset, current = 1, 0, url
    for _ in range(max_pages):
        if paging == "page":
            current = with_query(url, {page_param: number, **_size(page_size_param, page_size)})
        elif paging == "offset":
            current = with_query(url, {page_param: offset, **_size(page_size_param, page_size)})
        document = get_json(current, headers, retries, backoff)
        records = dig(document, records_path)
        if records is None:
            records = []
        if not isinstance(records, list):
            raise RuntimeError(f"GET {current}: the value at records_path {records_path!r} "
                               f"is not a list; set records_path to where the records are")
        yield records
        if paging == "none" or not records:
            return
        if paging == "next":
            link = dig(document, next_path)
            if not link:
                return
            current = urllib.parse.urljoin(current, str(link))
        elif page_size and len(records) < page_size:
            return
        number, offset = number + 1, offset + len(records)


def _size(name: str, size: int) -> dict[str, int]:
    return {name: size} if name and size else {}
