"""What the server tells about itself: health checks (``/health/live``, ``/health/ready``).
Logging, metrics and tracing belong here too."""
