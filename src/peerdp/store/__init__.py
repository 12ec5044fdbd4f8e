"""peerdp.store"""
