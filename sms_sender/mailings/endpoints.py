from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/mailings", tags=["mailings"])
