import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300  # 5 minutes, either way: an old delivery replayed, or a clock far ahead


def verify_webhook(raw_body: bytes, signature_header: str, secret: str, now: float | None = None) -> bool:
    """True if `raw_body` (the request's bytes, exactly as received) was signed by `secret` within the tolerance."""
    try:
        pairs = [item.split("=", 1) for item in signature_header.split(",")]
        timestamp = int(next(value for key, value in pairs if key == "t"))
        signatures = [value for key, value in pairs if key == "v1"]
    except (ValueError, StopIteration):
        return False
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)
