"""peerdp.site"""
