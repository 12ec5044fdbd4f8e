"""peerdp.agents"""
