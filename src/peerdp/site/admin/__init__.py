"""The admin REST API, one module per resource."""
