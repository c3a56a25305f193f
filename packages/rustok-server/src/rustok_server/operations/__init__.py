"""The routes an operator's tools call: health checks (``/health/live``,
``/health/ready``; `health`) and the Prometheus exposition (``/metrics``;
`metrics_route`). They sit above every other folder: they report on all of them."""
