"""The bucket, through boto3, with every failure turned into one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from sealmail.backup.errors import BackupError

if TYPE_CHECKING:
    from sealmail.settings import Settings

_MEANING = {
    "SignatureDoesNotMatch": "the S3 secret key is wrong",
    "InvalidAccessKeyId": "the S3 access key is unknown",
    "AccessDenied": "access denied by the S3 server (check the keys and the bucket policy)",
    "NoSuchBucket": "the bucket does not exist",
    "NoSuchKey": "the object is missing",
    "404": "the object is missing",
}


def _explain(exc: Exception, what: str) -> BackupError:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        reason = _MEANING.get(code, f"{code}: {exc.response.get('Error', {}).get('Message', exc)}")
    elif isinstance(exc, EndpointConnectionError):
        reason = f"cannot reach the S3 endpoint ({exc})"
    else:
        reason = str(exc)
    return BackupError(f"S3 {what}: {reason}")


class Bucket:
    def __init__(self, settings: Settings) -> None:
        missing = [
            name
            for name, value in (
                ("SEALMAIL_BACKUP_S3_ENDPOINT", settings.backup_s3_endpoint),
                ("SEALMAIL_BACKUP_S3_BUCKET", settings.backup_s3_bucket),
                ("SEALMAIL_BACKUP_S3_ACCESS_KEY", settings.backup_s3_access_key),
                ("SEALMAIL_BACKUP_S3_SECRET_KEY", settings.backup_s3_secret_key),
            )
            if not value
        ]
        if missing:
            raise BackupError(f"backups are not configured: set {', '.join(missing)}")
        assert settings.backup_s3_secret_key is not None
        self.name = str(settings.backup_s3_bucket)
        self.prefix = (settings.backup_prefix or settings.mail_hostname).strip("/")
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.backup_s3_endpoint,
            region_name=settings.backup_s3_region,
            aws_access_key_id=settings.backup_s3_access_key,
            aws_secret_access_key=settings.backup_s3_secret_key.get_secret_value(),
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                # Plain requests many S3-compatible servers (Swift's s3api, older MinIO, Ceph) take:
                # checksums only where the API requires them.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                connect_timeout=10,
                read_timeout=60,
            ),
        )

    def key(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    def close(self) -> None:
        """Let go of the client's connections (a long-running process makes many buckets)."""
        self.client.close()

    def __enter__(self) -> Bucket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> None:
        """Fail early, with the reason, when the bucket cannot be used."""
        try:
            self.client.head_bucket(Bucket=self.name)
            return
        except ClientError as exc:
            status = str(exc.response.get("Error", {}).get("Code", ""))
            if status in ("404", "NoSuchBucket"):
                raise BackupError(f"S3 bucket {self.name}: the bucket does not exist") from exc
            if status != "403":
                raise _explain(exc, f"bucket {self.name}") from exc
        except BotoCoreError as exc:
            raise _explain(exc, f"bucket {self.name}") from exc
        # A HEAD answer has no body: ask again with a request whose error says which key is wrong.
        try:
            self.client.list_objects_v2(Bucket=self.name, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"bucket {self.name}") from exc
        raise BackupError(f"S3 bucket {self.name}: access denied (the keys may not use this bucket)")

    def put(self, key: str, data: bytes) -> str:
        """Upload; returns the object's ETag."""
        try:
            return str(self.client.put_object(Bucket=self.name, Key=key, Body=data)["ETag"])
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"upload of {key}") from exc

    def put_file(self, key: str, path: Any) -> str:
        """Upload a file of any size (multipart when large); returns the object's ETag."""
        try:
            self.client.upload_file(str(path), self.name, key)
            return str(self.client.head_object(Bucket=self.name, Key=key)["ETag"])
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"upload of {key}") from exc
        except Exception as exc:  # boto3's transfer manager wraps errors in its own types
            cause = exc.__cause__ if isinstance(exc.__cause__, ClientError | BotoCoreError) else exc
            raise _explain(cause, f"upload of {key}") from exc

    def objects(self, under: str) -> dict[str, tuple[int, str]]:
        """Key -> (size, ETag) of every object under a prefix, in one listing."""
        try:
            found = {}
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=under):
                for item in page.get("Contents", []):
                    found[item["Key"]] = (int(item["Size"]), str(item["ETag"]))
            return found
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"listing of {under}") from exc

    def get(self, key: str) -> bytes:
        try:
            body: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
            return body
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"download of {key}") from exc

    def stream(self, key: str, chunk: int = 1 << 20) -> Iterator[bytes]:
        """An object's content piece by piece (never whole in memory)."""
        try:
            body = self.client.get_object(Bucket=self.name, Key=key)["Body"]
            try:
                yield from body.iter_chunks(chunk)
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"download of {key}") from exc

    def keys(self, under: str) -> Iterator[str]:
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=under):
                for item in page.get("Contents", []):
                    yield item["Key"]
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"listing of {under}") from exc

    def delete(self, keys: list[str]) -> None:
        # One request per object: the batch call needs a checksum header not every S3-compatible
        # server accepts, and retention deletes few objects per run.
        for key in keys:
            try:
                self.client.delete_object(Bucket=self.name, Key=key)
            except (ClientError, BotoCoreError) as exc:
                raise _explain(exc, f"deletion of {key}") from exc
