"""The order feature over HTTP: ``/api/commerce/orders`` (``api.py``) over
``rustok_commerce.OrderService``, the SQL repository it runs on (``repository.py``) and
its tables (``tables.py``)."""
