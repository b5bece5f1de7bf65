"""The mall's end-to-end scenarios, each a function of a shopper (run against any deployment:
one process or several, SQLite or PostgreSQL). The Given/When/Then lines are the feature."""

from __future__ import annotations

from typing import Any

from mall_process import eventually, json_of
from shopping import Shopper


def sent_commands(saga: dict[str, Any]) -> list[str]:
    """The commands and compensations the saga sent, in order."""
    return [h["command"] for h in saga["history"] if "command" in h]


def names_known(order: dict[str, Any]) -> bool:
    """Search has the order's names (it may index an order before it hears of them)."""
    return bool(order["customerName"]) and all(
        i["productName"] and i["storeName"] for i in order["items"]
    )


def happy_path(shop: Shopper) -> str:
    # Given a customer, a participating store with a product, a payment covering the basket
    customer = shop.customer()
    store, product = shop.store_with_product(price=800)
    basket = shop.basket(customer, product, quantity=2)
    payment = shop.payment(customer, 1600)
    # When the basket is checked out
    shop.checkout(basket, payment)
    # Then the order (its id: the basket's) is approved and its shopping list is available
    order = shop.order_when(basket, "approved")
    assert order["total"] == 1600 and order["customerId"] == customer
    assert order["paymentId"] == payment and order["shoppingId"]
    shopping = shop.shopping(order["shoppingId"])
    assert shopping["status"] == "available" and shopping["orderId"] == basket
    assert [s["storeId"] for s in shopping["stops"]] == [store]
    # When a bot shops it, the order is ready and has an invoice for its total
    shop.ship(order["shoppingId"])
    assert shop.shopping(order["shoppingId"])["status"] == "completed"
    shop.order_when(basket, "ready", "completed")
    invoice = shop.pay_invoice(basket)
    assert invoice["amount"] == 1600 and invoice["status"] == "issued"
    # Then paying the invoice completes the order
    shop.order_when(basket, "completed")
    saga = shop.saga_when(basket, "completed")
    assert saga["name"] == "CreateOrderSaga" and saga["step"] == "ApproveOrder"
    # And the customer was notified, and search finds the completed order
    kinds = ["order_created", "order_ready", "order_completed"]
    eventually(lambda: [n["kind"] for n in shop.notifications(customer)] == kinds, "notifications")
    found = eventually(
        lambda: shop.search(customerId=customer, status="completed"), "the order in search"
    )
    assert [o["id"] for o in found] == [basket]
    # with the names of the customer, the store and the product, from search's own copies
    named = eventually(
        lambda: [o for o in shop.search(customerId=customer) if names_known(o)], "names"
    )
    assert named[0]["customerName"] == "Ada"
    assert [(i["productName"], i["storeName"], i["quantity"]) for i in named[0]["items"]] == [
        ("Mug", "Corner", 2)
    ]
    assert json_of(shop.http.get(f"/api/search/orders/{basket}")) == named[0]
    assert basket in [o["id"] for o in shop.search(customerName="dA", limit=500)]
    assert [o["id"] for o in shop.search(productIds=[product], minTotal=1600, maxTotal=1600)] == [
        basket
    ]
    assert shop.search(storeIds=[store], maxTotal=1599) == []
    return basket


def disabled_customer(shop: Shopper) -> None:
    # Given a disabled customer with a filled basket
    customer = shop.customer("Bob")
    _, product = shop.store_with_product()
    json_of(shop.http.put(f"/api/customers/{customer}/disable"), 204)
    basket = shop.basket(customer, product)
    # When it is checked out, the order is rejected and nothing is left behind
    shop.checkout(basket, shop.payment(customer, 10_000))
    assert shop.order_when(basket, "rejected")["shoppingId"] is None
    saga = shop.saga_when(basket, "compensated")
    assert sent_commands(saga) == ["CheckOrderPending", "AuthorizeCustomer", "RejectOrder"]
    refusal = next(h for h in saga["history"] if h["event"] == "step refused")
    assert refusal["step"] == "AuthorizeCustomer" and "is disabled" in refusal["detail"]
    kinds = ["order_created", "order_rejected"]
    eventually(lambda: [n["kind"] for n in shop.notifications(customer)] == kinds, "notifications")


def payment_below_total(shop: Shopper) -> None:
    # Given a payment authorizing less than the basket's total
    customer = shop.customer("Cy")
    _, product = shop.store_with_product(price=1000)
    basket = shop.basket(customer, product, quantity=3)
    shop.checkout(basket, shop.payment(customer, 2999))
    # Then the shopping list is created then cancelled, and the order rejected
    shop.order_when(basket, "rejected")
    saga = shop.saga_when(basket, "compensated")
    assert sent_commands(saga) == [
        "CheckOrderPending",
        "AuthorizeCustomer",
        "CreateShoppingList",
        "ConfirmPayment",
        "CancelShoppingList",
        "RejectOrder",
    ]
    refusal = next(h for h in saga["history"] if h["event"] == "step refused")
    assert refusal["step"] == "ConfirmPayment" and "below the order total" in refusal["detail"]
    # the list the saga made (its id came back in depot's reply) is cancelled
    assert shop.shopping(saga["data"]["shoppingId"])["status"] == "cancelled"
    assert shop.http.get(f"/api/payments/invoices/{basket}").status_code == 404


def cancel_before_ready(shop: Shopper) -> None:
    customer = shop.customer("Di")
    _, product = shop.store_with_product()
    basket = shop.basket(customer, product, quantity=1)
    shop.checkout(basket, shop.payment(customer, 800))
    order = shop.order_when(basket, "approved")
    # When the customer cancels the approved order, its shopping list is cancelled too
    json_of(shop.http.delete(f"/api/ordering/{basket}"), 204)
    assert shop.order_when(basket, "cancelled")["status"] == "cancelled"
    eventually(
        lambda: shop.shopping(order["shoppingId"])["status"] == "cancelled",
        "the shopping list cancelled",
    )
    # And a bot can no longer take it; a second cancel is refused
    refused = json_of(
        shop.http.put(f"/api/depot/shopping/{order['shoppingId']}/assign", json={"botId": "b"}), 409
    )
    assert refused["error"] == "conflict"
    assert json_of(shop.http.delete(f"/api/ordering/{basket}"), 409)["error"] == "conflict"


def cancel_refused_once_ready(shop: Shopper) -> None:
    customer = shop.customer("Ed")
    _, product = shop.store_with_product()
    basket = shop.basket(customer, product, quantity=1)
    shop.checkout(basket, shop.payment(customer, 800))
    shop.ship(shop.order_when(basket, "approved")["shoppingId"])
    shop.order_when(basket, "ready")
    refused = json_of(shop.http.delete(f"/api/ordering/{basket}"), 409)
    assert "ready" in refused["detail"]


def price_change_in_basket(shop: Shopper) -> None:
    # Given a basket holding a product at 800
    customer = shop.customer("Flo")
    _, product = shop.store_with_product(price=800)
    basket = shop.basket(customer, product, quantity=2)
    # When the store raises its price, the store keeps working and shows the new price
    json_of(
        shop.http.put(f"/api/stores/products/{product}/increasePrice", json={"price": 200}), 204
    )
    assert json_of(shop.http.get(f"/api/stores/products/{product}"))["price"] == 1000
    # And the basket keeps the price its shopper saw; checking out charges that
    items = json_of(shop.http.get(f"/api/baskets/{basket}"))["items"]
    assert [(i["productId"], i["price"], i["quantity"]) for i in items] == [(product, 800, 2)]
    shop.checkout(basket, shop.payment(customer, 1600))
    assert shop.order_when(basket, "approved")["total"] == 1600

    # A new basket gets the new price once baskets' cache has it (eventually consistent)
    def new_price() -> bool:
        fresh = shop.basket(customer, product, quantity=1)
        return bool(json_of(shop.http.get(f"/api/baskets/{fresh}"))["items"][0]["price"] == 1000)

    eventually(new_price, "the new price in a new basket")
