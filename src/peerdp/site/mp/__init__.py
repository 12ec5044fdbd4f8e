"""The management point (`/mp/v1`): registration, policy, content location, status.

A policy answer carries its version as an ETag, and is a 304 for a caller that holds it
(`policy_answer.py`); how clients fetch policy is the site's setting (`polling.py`); the
long-polls a process holds are counted and limited by its open files (`held_polls.py`).
"""
