"""The seed's bank account, done properly: see app.py."""
