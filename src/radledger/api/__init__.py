"""radledger's HTTP API (FastAPI): ``create_app(home_path)``."""

from radledger.api.app import create_app

__all__ = ["create_app"]
