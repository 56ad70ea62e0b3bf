"""Workflows: campaigns as adage DAGs, executors, containerised steps and REANA export."""
