"""Stores' messages: none in; its integration events (store and product events) go out
through its log, where baskets, depot and search follow them."""
