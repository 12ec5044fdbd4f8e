"""The management point (`/mp/v1`): registration, policy, content location, status.

Policy: its SQL readers (`policy.py`); versions, shared bodies and signing, computed only
when an input changed (`policy_service.py`, inputs named in `policy_inputs.py`); the
`GET /policy` answer with its ETag and 304 (`long_poll.py`); the held long-polls, woken
only by the changes that concern them and answered at a steady pace (`waiters.py`); how
clients fetch policy, the site's setting (`polling.py`); the long-polls a process holds,
counted and limited by its open files (`held_polls.py`).
"""
