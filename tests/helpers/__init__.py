"""Helpers the tests import (fixtures stay in conftest.py, which tests never import)."""
