"""The bare baseline: FastAPI with one route, the same answer as the template's /healthz."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
