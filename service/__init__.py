"""The HTTP API and web portal of yiyun (`yiyun serve`)."""
