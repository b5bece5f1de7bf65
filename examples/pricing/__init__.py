"""Product price history with who/why metadata, against a CRUD row: see app.py."""
