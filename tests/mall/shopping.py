"""A shopper's steps through the mall's HTTP API, as the scenarios use them."""

from __future__ import annotations

from typing import Any

import httpx
from mall_process import eventually, json_of


class Shopper:
    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def customer(self, name: str = "Ada", sms: str = "+15550100") -> str:
        return str(
            json_of(self.http.post("/api/customers", json={"name": name, "smsNumber": sms}), 201)[
                "id"
            ]
        )

    def store_with_product(self, price: int = 800, name: str = "Mug") -> tuple[str, str]:
        store = json_of(
            self.http.post("/api/stores", json={"name": "Corner", "location": "Main St"}), 201
        )["id"]
        json_of(self.http.put(f"/api/stores/{store}/participating"), 204)
        product = json_of(
            self.http.post(
                f"/api/stores/{store}/products",
                json={"name": name, "description": "a mug", "sku": f"SKU-{name}", "price": price},
            ),
            201,
        )["id"]
        return str(store), str(product)

    def basket(self, customer: str, product: str, quantity: int = 2) -> str:
        basket = str(
            json_of(self.http.post("/api/baskets", json={"customerId": customer}), 201)["id"]
        )
        json_of(
            self.http.put(
                f"/api/baskets/{basket}/addItem", json={"productId": product, "quantity": quantity}
            ),
            204,
        )
        return basket

    def payment(self, customer: str, amount: int) -> str:
        return str(
            json_of(
                self.http.post("/api/payments", json={"customerId": customer, "amount": amount}),
                201,
            )["id"]
        )

    def checkout(self, basket: str, payment: str) -> None:
        json_of(self.http.put(f"/api/baskets/{basket}/checkout", json={"paymentId": payment}), 204)

    def order_when(self, order: str, *statuses: str, seconds: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            response = self.http.get(f"/api/ordering/{order}")
            if response.status_code == 404:
                return None
            body: dict[str, Any] = json_of(response)
            return body if body["status"] in statuses else None

        return eventually(reached, f"order {order} to be {' or '.join(statuses)}", seconds)

    def saga_when(self, order: str, *statuses: str, seconds: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            response = self.http.get(f"/api/sagas/{order}")
            if response.status_code == 404:
                return None
            body: dict[str, Any] = json_of(response)
            return body if body["status"] in statuses else None

        return eventually(reached, f"saga {order} to be {' or '.join(statuses)}", seconds)

    def shopping(self, id: str) -> dict[str, Any]:
        body: dict[str, Any] = json_of(self.http.get(f"/api/depot/shopping/{id}"))
        return body

    def ship(self, shopping_id: str, bot: str = "bot-7") -> None:
        json_of(
            self.http.put(f"/api/depot/shopping/{shopping_id}/assign", json={"botId": bot}), 204
        )
        json_of(self.http.put(f"/api/depot/shopping/{shopping_id}/complete"), 204)

    def pay_invoice(self, order: str) -> dict[str, Any]:
        def issued() -> dict[str, Any] | None:
            response = self.http.get(f"/api/payments/invoices/{order}")
            return None if response.status_code == 404 else json_of(response)

        invoice: dict[str, Any] = eventually(issued, f"the invoice of order {order}")
        json_of(self.http.put(f"/api/payments/invoices/{order}/pay"), 204)
        return invoice

    def notifications(self, customer: str) -> list[dict[str, Any]]:
        body: list[dict[str, Any]] = json_of(
            self.http.get("/api/notifications", params={"customerId": customer})
        )
        return body

    def search(self, **filters: Any) -> list[dict[str, Any]]:
        body = json_of(self.http.post("/api/search/orders", json=filters))
        orders: list[dict[str, Any]] = body["orders"]
        return orders
