"""What every mall service shares: its store, its messages, its HTTP error shape."""
