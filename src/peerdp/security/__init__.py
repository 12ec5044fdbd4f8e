"""peerdp.security"""
