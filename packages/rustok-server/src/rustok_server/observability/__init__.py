"""What the server records about itself: logs (`logs`), metrics (`metrics`), traces
(`tracing`) and the middleware that records every request. The routes that expose them
(``/health/*``, ``/metrics``) are in `rustok_server.operations`."""
