"""Pull the gateway's log API into the store (section D of formats.md).

Cut by concern, like dlt's REST client: `sources` declares the streams and reads the
settings, `client` makes the HTTP calls (timeouts, retries, the gateway's errors),
`paginator` walks the pages of one stream (with a loop guard), `run` loads each page
with its cursor in one database transaction.
"""
