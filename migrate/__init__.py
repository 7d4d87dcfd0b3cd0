"""Migration of department clouds: assessment, strategy, wave planning and tracking."""
