"""The no-code web app (``trainforge app``): FastAPI server, REST API under ``/api``, job queue, static UI.

Needs the ``app`` extra: ``pip install 'trainforge[app]'``.
"""
