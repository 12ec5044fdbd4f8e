"""peerdp.transfer"""
