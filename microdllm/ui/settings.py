"""The app's settings, read once from the environment, and the model store every session shares.

The handlers read these as `settings.NAME` when they run (not copied at import), so a test or a
bench can change one in a single place.
"""
from __future__ import annotations

import os

from ..checkpoint import BUNDLED_AR_DIR
from ..sampling import MAX_POLISH, MAX_STEPS
from ..serving import ModelStore, load_limits, public_mode

CONCURRENCY = 2          # generations at once: a free Space has 2 vCPUs
HUB_TIMEOUT = float(os.environ.get("MICRODLLM_HUB_TIMEOUT", "5"))
INT8 = os.environ.get("MICRODLLM_INT8", "").lower() in ("1", "true", "yes")
COMPILE = os.environ.get("MICRODLLM_COMPILE", "").lower() in ("1", "true", "yes")
PUBLIC = public_mode()   # MICRODLLM_PUBLIC, default on when SPACE_ID is set (a Hugging Face Space)
LIMITS = load_limits()   # MICRODLLM_MAX_PARAMETERS / _LAYERS / _WIDTH / _CONTEXT / _FILE_MB
QUEUE_SIZE = int(os.environ.get("MICRODLLM_QUEUE_SIZE") or 32)   # runs waiting beyond the two running
MAX_TRACE = MAX_STEPS + MAX_POLISH + 2
RUN_TTL_S = float(os.environ.get("MICRODLLM_RUN_TTL_S") or 1800)   # a session's run (rewind, branch, export,
                                                                   # a paused run) is kept this long at most
AR_SOURCE = os.environ.get("MICRODLLM_AR_CHECKPOINT", str(BUNDLED_AR_DIR))

# Loaded once, shared by all sessions; each session remembers which model it uses (a key).
STORE = ModelStore(timeout=HUB_TIMEOUT, int8=INT8, compile=COMPILE, public=PUBLIC, limits=LIMITS)
