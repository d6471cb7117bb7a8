"""Import newswire's Kibana saved objects through Kibana's saved objects import API.

    KIBANA_URL=http://kibana:5601 KIBANA_USERNAME=elastic KIBANA_PASSWORD=... \
        python import_saved_objects.py [newswire.ndjson]

Run once by the `kibana-import` compose service after Kibana is healthy. Standard library
only, so it runs in any Python 3.11 image. Objects are imported with ``overwrite=true``:
running it again updates them in place. Exit status 0 only when Kibana reports every
object imported.

Environment:
  KIBANA_URL            base URL of Kibana (default http://localhost:5601)
  KIBANA_USERNAME/KIBANA_PASSWORD, or KIBANA_API_KEY (base64 id:key)
  KIBANA_SPACE          space id to import into (default: the default space)
  KIBANA_CA_CERTS       CA bundle when Kibana is served over HTTPS with a private CA
  KIBANA_WAIT_SECONDS   how long to wait for Kibana to report itself available (default 300)
  KIBANA_POLL_SECONDS   pause between status checks (default 5)
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).resolve().parent / "newswire.ndjson"


class ImportFailed(Exception):
    pass


def read_objects(path: Path) -> tuple[bytes, list[dict[str, Any]]]:
    """The file's bytes and its objects; refuse a file Kibana would half-import."""
    raw = path.read_bytes()
    objects = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise ImportFailed(f"{path}:{number}: not JSON: {exc}") from exc
        if not isinstance(obj, dict) or not {"type", "id", "attributes"} <= obj.keys():
            raise ImportFailed(f"{path}:{number}: a saved object needs type, id and attributes")
        objects.append(obj)
    if not objects:
        raise ImportFailed(f"{path}: no saved objects")
    return raw, objects


def auth_header(env: dict[str, str]) -> dict[str, str]:
    if env.get("KIBANA_API_KEY"):
        return {"Authorization": f"ApiKey {env['KIBANA_API_KEY']}"}
    user, password = env.get("KIBANA_USERNAME"), env.get("KIBANA_PASSWORD")
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    raise ImportFailed("set KIBANA_USERNAME and KIBANA_PASSWORD, or KIBANA_API_KEY")


def multipart(filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = f"newswire-{uuid.uuid4().hex}"
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Kibana:
    def __init__(self, env: dict[str, str]) -> None:
        self.base = env.get("KIBANA_URL", "http://localhost:5601").rstrip("/")
        space = env.get("KIBANA_SPACE", "").strip()
        self.space_prefix = f"/s/{space}" if space and space != "default" else ""
        self.headers = {"kbn-xsrf": "newswire-import", **auth_header(env)}
        cafile = env.get("KIBANA_CA_CERTS")
        self.context = ssl.create_default_context(cafile=cafile) if cafile else None

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str | None = None, timeout: float = 30) -> tuple[int, Any]:
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.context) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        try:
            return status, json.loads(payload or b"null")
        except ValueError:
            return status, payload.decode("utf-8", "replace")[:500]

    def wait_available(self, wait_seconds: float, poll_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        last = "no answer"
        while True:
            try:
                status, body = self.request("GET", "/api/status", timeout=10)
                level = (body.get("status", {}).get("overall", {}).get("level")
                         if isinstance(body, dict) else None)
                if status == 200 and level == "available":
                    return
                if status in (401, 403):
                    raise ImportFailed(f"Kibana refused the credentials (HTTP {status})")
                last = f"HTTP {status}, level {level}"
            except (urllib.error.URLError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise ImportFailed(f"Kibana at {self.base} not available in time ({last})")
            print(f"waiting for Kibana: {last}", file=sys.stderr)
            time.sleep(poll_seconds)

    def import_objects(self, path: Path) -> dict[str, Any]:
        raw, objects = read_objects(path)
        body, content_type = multipart(path.name, raw)
        status, result = self.request(
            "POST", f"{self.space_prefix}/api/saved_objects/_import?overwrite=true",
            body, content_type, timeout=120,
        )
        if status != 200 or not isinstance(result, dict):
            raise ImportFailed(f"import answered HTTP {status}: {result}")
        errors = result.get("errors") or []
        if not result.get("success") or errors or result.get("successCount") != len(objects):
            lines = [f"  {e.get('type')}/{e.get('id')}: {json.dumps(e.get('error'))}"
                     for e in errors]
            raise ImportFailed(
                f"imported {result.get('successCount')} of {len(objects)} objects\n"
                + "\n".join(lines)
            )
        return result


def main(argv: list[str], env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    path = Path(argv[0]) if argv else DEFAULT_FILE
    try:
        kibana = Kibana(env)
        kibana.wait_available(float(env.get("KIBANA_WAIT_SECONDS", "300")),
                              float(env.get("KIBANA_POLL_SECONDS", "5")))
        result = kibana.import_objects(path)
    except ImportFailed as exc:
        print(f"kibana import failed: {exc}", file=sys.stderr)
        return 1
    print(f"kibana import: {result['successCount']} saved objects from {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
