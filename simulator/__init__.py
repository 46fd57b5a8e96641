"""A local stand-in for the Twilio Email API (``/v1/Emails``) and its status webhooks.

Pure core (no web framework, HTTP client or Kafka): ``clock`` (accelerable API time), ``lifecycle``
(outcome rates and each email's planned statuses), ``model`` (Email and Operation resources),
``validation`` (every problem of a send request), ``paging`` (opaque page tokens), ``core`` (the
simulated account: accept, list, fetch, ground truth), ``webhooks`` (which webhook copies leave when:
drops, duplicates, delays, bursts, payload shapes).

Adapters: ``app`` (Starlette), ``sender`` (httpx webhook delivery with retries), ``server``
(start/stop in-process on a free loopback port), ``driver`` (posts realistic send requests).
"""
