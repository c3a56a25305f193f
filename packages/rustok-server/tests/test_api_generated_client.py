"""A generated client works: ``openapi-python-client`` turns the live ``/openapi.json`` into
a package whose functions carry the operation ids, whose optional bodies can be left out,
and which reads every error as the ``ProblemDetails`` model. Through it an order is walked
to delivered and a node to archived."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from api_fixtures import ServerFactory

from rustok_server import Tenant

PACKAGE = "rustok_generated_client"
CONFIG = f"""\
package_name_override: {PACKAGE}
project_name_override: {PACKAGE}
post_hooks: []
"""


def _generate(url: str, workdir: Path) -> None:
    spec = workdir / "openapi.json"
    spec.write_bytes(httpx.get(f"{url}/openapi.json").raise_for_status().content)
    config = workdir / "config.yaml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).with_name("openapi-python-client")),
        "generate",
        "--path",
        str(spec),
        "--config",
        str(config),
        "--meta",
        "none",
        "--output-path",
        str(workdir / PACKAGE),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout


class Generated:
    """The generated package's modules, by the names a user writes."""

    def __init__(self) -> None:
        self.client = importlib.import_module(f"{PACKAGE}.client")
        self.models = importlib.import_module(f"{PACKAGE}.models")

    def api(self, tag: str, operation: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")


@pytest.fixture
def generated(
    start_server: ServerFactory,
    tenants: dict[str, Tenant],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Generated, str]]:
    """The client generated from the live server's document, importable (for this test
    only), and the URL."""
    server = start_server()
    _generate(server.url, tmp_path)
    monkeypatch.syspath_prepend(tmp_path)
    try:
        yield Generated(), server.url
    finally:
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture
async def client(
    generated: tuple[Generated, str], api_headers: dict[str, str]
) -> AsyncIterator[Any]:
    """The generated package's ``Client`` of the live server, closed after the test."""
    package, url = generated
    client = package.client.Client(base_url=url, headers=api_headers)
    try:
        yield client
    finally:
        await client.get_async_httpx_client().aclose()


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.parsed


async def test_a_generated_client_walks_an_order_to_delivered_and_reads_problems(
    generated: tuple[Generated, str], client: Any
) -> None:
    package, url = generated
    models = package.models
    orders = "orders"
    body = models.CreateOrderInput(customer_id=uuid.uuid4(), currency="EUR", amount="49.90")
    create = package.api(orders, "create_order")
    order = _ok(await create.asyncio_detailed(client=client, body=body), 201)
    assert isinstance(order, models.OrderOut)
    order_id = order.id

    refused = await package.api(orders, "pay_order").asyncio_detailed(
        order_id,
        client=client,
        body=models.PayOrderInput(payment_id="pi_1", payment_method="card"),
    )
    problem = refused.parsed
    assert isinstance(problem, models.ProblemDetails)
    assert (refused.status_code, problem.status) == (409, 409)
    assert problem.additional_properties["allowed_actions"] == ["cancel", "confirm"]
    async with httpx.AsyncClient() as plain:
        page = await plain.get(urljoin(url + problem.instance, problem.type_))
    assert page.status_code == 200

    confirm = package.api(orders, "confirm_order")
    order = _ok(await confirm.asyncio_detailed(order_id, client=client))  # no body
    pay = package.api(orders, "pay_order")
    payment = models.PayOrderInput(payment_id="pi_1", payment_method="card")
    order = _ok(await pay.asyncio_detailed(order_id, client=client, body=payment))
    ship = package.api(orders, "ship_order")
    shipment = models.ShipOrderInput(tracking_number="1Z999", carrier="UPS")
    order = _ok(await ship.asyncio_detailed(order_id, client=client, body=shipment))
    deliver = package.api(orders, "deliver_order")
    delivery = models.DeliverOrderInput(signature="J. Doe")
    order = _ok(await deliver.asyncio_detailed(order_id, client=client, body=delivery))
    assert order.state.value == "delivered"
    assert order.total.amount == "49.90"

    malformed = await create.asyncio_detailed(
        client=client,
        body=models.CreateOrderInput(customer_id=uuid.uuid4(), currency="EUR", amount="1E+37"),
    )
    assert isinstance(malformed.parsed, models.ProblemDetails)
    assert malformed.parsed.code == "VALIDATION"
    assert [error.pointer for error in malformed.parsed.errors] == ["/amount"]


async def test_a_generated_client_walks_a_node_to_archived(
    generated: tuple[Generated, str], client: Any
) -> None:
    package, _url = generated
    models = package.models
    body = models.CreateNodeInput(kind=models.NodeKind.ARTICLE, title="Hello", slug="hello")
    create = package.api("content", "create_node")
    node = _ok(await create.asyncio_detailed(client=client, body=body), 201)
    duplicate = await create.asyncio_detailed(client=client, body=body)
    assert isinstance(duplicate.parsed, models.ProblemDetails)
    assert duplicate.parsed.code == "DUPLICATE_SLUG"

    publish = package.api("content", "publish_node")
    node = _ok(await publish.asyncio_detailed(node.id, client=client, if_match='"1"'))
    archive = package.api("content", "archive_node")
    blank = await archive.asyncio_detailed(
        node.id, client=client, body=models.ArchiveNodeInput(reason=" ")
    )
    assert isinstance(blank.parsed, models.ProblemDetails)
    assert (blank.status_code, blank.parsed.code) == (422, "GUARD_FAILED")
    reason = models.ArchiveNodeInput(reason="outdated")
    node = _ok(await archive.asyncio_detailed(node.id, client=client, body=reason))
    assert node.state.value == "archived"
    listing = package.api("content", "list_nodes")
    page = _ok(await listing.asyncio_detailed(client=client, state="archived"))
    assert [item.id for item in page.items] == [node.id]
    forged = await listing.asyncio_detailed(client=client, cursor="Zm9yZ2Vk")
    assert isinstance(forged.parsed, models.ProblemDetails)
    assert forged.parsed.code == "INVALID_CURSOR"
