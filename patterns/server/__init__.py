"""``patterns serve``: the always-on engine (scheduler, webhooks, REST API) over HTTP."""
