"""An S3 endpoint of the test run's own: moto's standalone server on a free 127.0.0.1 port.

``running_s3()`` starts ``python -m moto.server`` (the ``moto[server]`` dev extra), waits until it
answers, yields it and always stops it. Each test run (each xdist worker) starts its own the first
time a test asks for one; every user creates a bucket of its own (``new_bucket``), so nothing is
shared between tests. moto keeps everything in memory and accepts any credentials. Its blanket
CORS headers are off (``MOTO_DISABLE_GLOBAL_CORS``): as on S3, a page on another origin reads a
bucket only as far as the bucket's own CORS rules allow (``allow_cross_origin_reads``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from helpers import tool_missing
from servers import free_ports

START_SECONDS = 30
ACCESS_KEY_ID = "test-access-key"
SECRET_ACCESS_KEY = "test-secret-access-key"
REGION = "us-east-1"


@dataclass
class OwnS3:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def new_bucket(self, name: str | None = None) -> str:
        """An empty bucket of the caller's own."""
        bucket = name or f"rh-{uuid.uuid4().hex[:20]}"
        response = httpx.put(f"{self.endpoint_url}/{bucket}", timeout=10)
        assert response.status_code == 200, response.text
        return bucket

    def allow_public_reads(self, bucket: str, prefix: str) -> None:
        """A bucket policy letting anyone GET objects under ``prefix`` (what a CDN origin gets)."""
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*",
                }
            ],
        }
        response = httpx.put(f"{self.endpoint_url}/{bucket}?policy", content=json.dumps(policy), timeout=10)
        assert response.status_code in (200, 204), response.text

    def allow_cross_origin_reads(self, bucket: str, origin: str) -> None:
        """A bucket CORS rule letting pages on ``origin`` GET (and HEAD) its objects, as a web
        player's hls.js does when segments come from the store or a CDN in front of it."""
        rules = (
            '<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><CORSRule>'
            f"<AllowedOrigin>{origin}</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            "<AllowedMethod>HEAD</AllowedMethod><AllowedHeader>*</AllowedHeader><MaxAgeSeconds>600</MaxAgeSeconds>"
            "</CORSRule></CORSConfiguration>"
        )
        response = httpx.put(f"{self.endpoint_url}/{bucket}?cors", content=rules, timeout=10)
        assert response.status_code in (200, 204), response.text

    def settings(self, bucket: str, prefix: str = "media") -> dict[str, str]:
        """The app's settings for ``bucket`` on this server."""
        return {
            "MEDIA_STORE_URL": f"s3://{bucket}/{prefix}",
            "MEDIA_S3_ENDPOINT_URL": self.endpoint_url,
            "MEDIA_S3_REGION": REGION,
            "MEDIA_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "MEDIA_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "MEDIA_S3_PATH_STYLE": "true",
        }


@contextmanager
def running_s3() -> Iterator[OwnS3]:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        tool_missing("moto[server] is not installed (it is in the project's dev extras)")
    port = free_ports(1)[0]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_DISABLE_GLOBAL_CORS": "true"},
    )
    server = OwnS3(port, process)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"moto's S3 server on port {port} exited with {process.returncode}")
            try:
                httpx.get(f"{server.endpoint_url}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto's S3 server on port {port} did not start")
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
