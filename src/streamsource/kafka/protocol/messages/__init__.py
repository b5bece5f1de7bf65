"""The message schemas, one module per API or family of APIs."""
