"""The admin command groups, one module per API resource."""
