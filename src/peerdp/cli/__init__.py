"""peerdp.cli"""
