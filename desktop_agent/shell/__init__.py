"""The app's shell around the core and the views: background tasks, the remembered
account, logging. Used by the composition root (``desktop_agent.app``)."""
