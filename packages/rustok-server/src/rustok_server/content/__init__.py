"""The content feature over HTTP: ``/api/content/nodes`` (``api.py``) over
``rustok_content.NodeService``, the SQL repository it runs on (``repository.py``) and its
tables (``tables.py``)."""
