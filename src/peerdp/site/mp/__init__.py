"""The management point (`/mp/v1`): registration, policy, content location, status."""
