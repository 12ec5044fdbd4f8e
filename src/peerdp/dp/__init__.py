"""peerdp.dp"""
