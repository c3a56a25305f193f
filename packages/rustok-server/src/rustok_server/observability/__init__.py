"""What the server tells about itself: health checks (``/health/live``, ``/health/ready``),
logs (`logs`), metrics (`metrics`) and the middleware that records every request."""
