"""The odh Jupyter server extension: /odh/api/... inside each user's notebook server."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Int, Unicode

from .deployments import HANDLERS as DEPLOY_HANDLERS
from .deployments import Platform
from .features_api import HANDLERS as FEATURE_HANDLERS
from .handlers import HANDLERS, NOT_FOUND
from .ingestions import HANDLERS as INGEST_HANDLERS
from .s3 import client_from_env
from .spark import HANDLERS as SPARK_HANDLERS
from .usage import HANDLERS as USAGE_HANDLERS
from .validate import MiB

SPEC_PATH = os.path.join(os.path.dirname(__file__), "openapi.yaml")


class OdhExtensionApp(ExtensionApp):
    name = "odh"
    load_other_extensions = True

    part_size = Int(
        8 * MiB,
        config=True,
        help="""Multipart upload part size in bytes (at least 5 MiB; raised automatically so a file fits
        in 10,000 parts). The server holds at most one part per request in memory.""",
    )
    max_part_size = Int(64 * MiB, config=True, help="Largest part accepted for uploads this server did not start.")
    single_put_max = Int(8 * MiB, config=True, help="Largest object accepted in one PUT; larger files use /uploads.")
    max_upload_size = Int(5 * 2**40, config=True, help="Largest object an upload may announce (S3 allows 5 TiB).")
    default_page_size = Int(1000, config=True, help="Objects per listing page when the client does not say (1-1000).")
    presign_max_seconds = Int(7 * 24 * 3600, config=True, help="Longest validity of a presigned URL, in seconds.")
    s3_threads = Int(16, config=True, help="Threads for blocking S3 calls (parallel part uploads and listings).")

    models_bucket = Unicode(
        os.environ.get("ODH_MODELS_BUCKET", ""),
        config=True,
        help="Bucket (the user's own) that models deployed from files of this server are uploaded to.",
    )
    max_model_upload = Int(2 * 2**30, config=True, help="Largest model (bytes) the Deploy command uploads.")
    platform_url = Unicode(
        os.environ.get("ODH_PLATFORM_URL", ""),
        config=True,
        help="The platform service's URL (set by the spawner); deploy calls are forwarded there.",
    )

    prepare_s3_client = Bool(
        True,
        config=True,
        help="""Build the user's S3 client in the background once the server runs (not during its start), so the
        bucket browser's first listing does not pay for it: importing boto3 and loading S3's models costs about
        0.3 CPU seconds, which on a busy machine made the first listing take seconds. False: built on first use.""",
    )

    _s3 = None
    _s3_lock = threading.Lock()

    @property
    def s3(self):
        """The user's S3 client, made once (by the background preparation, or by the first call that needs it)."""
        if self._s3 is None:
            with self._s3_lock:  # the preparation and a first request may ask at the same time: one client
                if self._s3 is None:
                    self._s3 = client_from_env()
        return self._s3

    async def _start_jupyter_server_extension(self, serverapp):
        """Once the server's event loop runs (it answers already): prepare the S3 client in a worker thread."""
        if self.prepare_s3_client:
            self.executor.submit(self._prepare_s3)

    def _prepare_s3(self) -> None:
        began = time.monotonic()
        try:
            self.s3
            self.log.info("odh: S3 client prepared in %.2f s", time.monotonic() - began)
        except Exception as e:  # noqa: BLE001 - the first bucket call builds it again and answers the error
            self.log.warning("odh: the S3 client could not be prepared (%s); the first bucket call retries",
                             type(e).__name__)

    def initialize_settings(self):
        self.executor = ThreadPoolExecutor(max_workers=self.s3_threads, thread_name_prefix="odh-s3")
        self.uploads: dict[str, dict] = {}
        self.platform = Platform(self.platform_url, os.environ.get("JUPYTERHUB_API_TOKEN", ""))
        self.log.info("odh: bucket API ready (endpoint %s)", os.environ.get("S3_ENDPOINT_URL", "<aws default>"))

    def initialize_handlers(self):
        self.handlers.extend(FEATURE_HANDLERS + HANDLERS + DEPLOY_HANDLERS + SPARK_HANDLERS + INGEST_HANDLERS + USAGE_HANDLERS
                             + [NOT_FOUND])
