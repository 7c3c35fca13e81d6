"""Serving finished runs over HTTP: an OpenAI-compatible API for text generation, ``/v1/predict`` for every task.

>>> from trainforge.serve import ServeSettings, create_app, serve
>>> serve(ServeSettings(Path("runs/")), port=8000)  # what `trainforge serve runs/` runs

``create_app`` returns the FastAPI app (to mount in another ASGI app or run under any server). Needs the ``app``
extra (FastAPI, uvicorn).
"""

from trainforge.serve.server import ServeSettings, create_app, serve

__all__ = ["ServeSettings", "create_app", "serve"]
