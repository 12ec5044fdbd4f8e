"""peerdp.domain"""
